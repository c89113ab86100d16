"""Catalogue edits reach every web process's cached snapshot at once, and price changes are dated."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from gateway.catalog.models import CatalogModel, CatalogPrice
from gateway.invalidation import invalidate_publish


def catalogue_changed(sender: Any, **kwargs: Any) -> None:
    transaction.on_commit(lambda: invalidate_publish("catalog"))


def catalogue_price_record(sender: Any, instance: CatalogModel, **kwargs: Any) -> None:
    """Append to the model's price history when its prices differ from the latest dated price."""
    latest = instance.prices.order_by("-effective_from").first()
    if latest is not None and (latest.input_price_per_mtok, latest.output_price_per_mtok) == (
        instance.input_price_per_mtok,
        instance.output_price_per_mtok,
    ):
        return
    CatalogPrice.objects.create(
        model=instance,
        input_price_per_mtok=instance.input_price_per_mtok,
        output_price_per_mtok=instance.output_price_per_mtok,
        effective_from=timezone.now(),
    )
