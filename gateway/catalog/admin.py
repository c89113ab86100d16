from __future__ import annotations

from django.contrib import admin

from gateway.catalog.models import CatalogModel


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin[CatalogModel]):
    list_display = [
        "name",
        "provider",
        "endpoint",
        "input_price_per_mtok",
        "output_price_per_mtok",
        "context_window",
        "supports_vision",
        "is_active",
    ]
    list_filter = ["provider", "endpoint", "is_active", "supports_vision"]
    search_fields = ["name", "upstream_model"]
