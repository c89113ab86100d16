"""Pricing arithmetic (gateway.pricing): unit prices with a price per request, and the BYOK fee."""

from __future__ import annotations

from decimal import Decimal

from gateway.pricing import UnitPrices


def test_a_requests_amount_adds_its_price_per_request_to_its_tokens_then_rounds_once() -> None:
    units = UnitPrices(Decimal(2), Decimal(2), Decimal("0.00050001"))

    assert units.amount(1_234, 567) == Decimal("0.00410201")  # 0.003602 + 0.00050001, exact
    assert units.amount(0, 0) == Decimal("0.00050001")
    assert UnitPrices(Decimal("0.015"), Decimal(0), Decimal("0.00000001")).amount(1, 0) == Decimal(
        "0.00000003"
    )  # 0.000000015 + 0.00000001, then half-up once


def test_a_cache_hits_percent_scales_the_price_per_request_too() -> None:
    units = UnitPrices(Decimal(2), Decimal(4), Decimal("0.0005"))

    assert units.percent(Decimal(10)) == UnitPrices(Decimal("0.2"), Decimal("0.4"), Decimal("0.00005"))
    assert UnitPrices(Decimal(0), Decimal(0), Decimal("0.00000005")).percent(Decimal(10)).request == Decimal(
        "0.00000001"
    )  # rounded half-up to 8 places like the token prices
