"""Provider cost and the price charged for one request, in Decimal.

Rounding: costs are computed exactly from per-million prices, then rounded half-up to 8 decimal places
(RequestRecord's precision) once, here; sums over records are exact after that. Billing rounds to cents
only on invoice lines.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from gateway.routing import ModelInfo

MILLION = Decimal(1_000_000)
PLACES = Decimal("0.00000001")
HUNDRED = Decimal(100)


def provider_cost(model: ModelInfo, input_tokens: int, output_tokens: int) -> Decimal:
    raw = (input_tokens * model.input_price_per_mtok + output_tokens * model.output_price_per_mtok) / MILLION
    return raw.quantize(PLACES, rounding=ROUND_HALF_UP)


def price_charged(cost: Decimal, markup_percent: Decimal) -> Decimal:
    return (cost * (HUNDRED + markup_percent) / HUNDRED).quantize(PLACES, rounding=ROUND_HALF_UP)


def price_of_hit(miss_price: Decimal, hit_percent: Decimal) -> Decimal:
    """What a cache hit is charged: the plan's percent of what the same answer would be charged on a miss."""
    return (miss_price * hit_percent / HUNDRED).quantize(PLACES, rounding=ROUND_HALF_UP)
