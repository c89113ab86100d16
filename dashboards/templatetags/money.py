"""Template filters for amounts of money (Decimal in, text out; never through float) and counts."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def unit_price(value: Decimal | None) -> str:
    """A price per 1M tokens with the decimals it has, at least two: 3.00, 0.0255 (empty for None)."""
    if value is None:
        return ""
    whole, _, fraction = f"{value.normalize():f}".partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


@register.filter
def grouped(value: int) -> str:
    """A count with thousands separators: 1,500,000."""
    return f"{value:,}"
