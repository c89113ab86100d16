from django.db import migrations


def date_current_prices(apps, schema_editor):
    """Today's prices become each model's first dated price, in force since the model was last updated."""
    CatalogModel = apps.get_model("catalog", "CatalogModel")
    CatalogPrice = apps.get_model("catalog", "CatalogPrice")
    for model in CatalogModel.objects.all():
        if not CatalogPrice.objects.filter(model=model).exists():
            CatalogPrice.objects.create(
                model=model,
                input_price_per_mtok=model.input_price_per_mtok,
                output_price_per_mtok=model.output_price_per_mtok,
                effective_from=model.updated_at,
            )


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_price_history")]

    operations = [migrations.RunPython(date_current_prices, migrations.RunPython.noop)]
