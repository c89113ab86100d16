from django.apps import AppConfig


class CatalogConfig(AppConfig):
    """The model catalogue: a shared (public-schema) app inside the gateway package."""

    name = "gateway.catalog"
    label = "catalog"
    verbose_name = "Model catalogue"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from gateway.catalog.models import CatalogModel
        from gateway.catalog.signals import catalogue_changed, catalogue_price_record

        post_save.connect(catalogue_price_record, sender=CatalogModel, dispatch_uid="catalog-price")
        post_save.connect(catalogue_changed, sender=CatalogModel, dispatch_uid="catalog-save")
        post_delete.connect(catalogue_changed, sender=CatalogModel, dispatch_uid="catalog-delete")
