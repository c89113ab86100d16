"""Pricing arithmetic (gateway.pricing): unit prices with a price per request, and the BYOK fee."""

from __future__ import annotations

from decimal import Decimal

from gateway.limits.estimate import request_estimate
from gateway.pricing import PlanPricing, UnitPrices
from gateway.routing import ModelInfo
from gateway.tokens import PromptBounds


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


def model(name: str = "gpt-4o-mini", endpoint: str = "openai") -> ModelInfo:
    return ModelInfo(
        name=name,
        provider="openai",
        endpoint=endpoint,
        upstream_model=name,
        input_price_per_mtok=Decimal("0.15"),
        output_price_per_mtok=Decimal("0.60"),
        context_window=128_000,
        max_output_tokens=16_384,
        supports_vision=False,
        supports_tools=True,
        supports_n=True,
    )


BYOK = PlanPricing(byok_fee_per_1k_tokens=Decimal("0.0002"), byok_fee_per_request=Decimal("0.001"))


def test_a_request_on_the_tenants_own_key_costs_the_plans_byok_fee_whatever_the_model() -> None:
    units = BYOK.request_unit_prices(model(), own_key=True)

    assert units == UnitPrices(Decimal("0.2"), Decimal("0.2"), Decimal("0.001"))
    assert units.amount(1_500, 500) == Decimal("0.0014")  # 2,000 tokens / 1k x $0.0002 + $0.001
    assert BYOK.request_unit_prices(model("gpt-4.1"), own_key=True) == units


def test_a_request_on_the_platforms_key_costs_the_models_price_and_no_fee() -> None:
    assert BYOK.request_unit_prices(model(), own_key=False) == UnitPrices(Decimal("0.18"), Decimal("0.72"))


def test_a_byok_fee_of_zero_leaves_byok_traffic_free() -> None:
    assert PlanPricing().request_unit_prices(model(), own_key=True).amount(10_000, 10_000) == Decimal(0)


def test_a_byok_candidate_reserves_its_fee_for_the_most_output_it_may_give() -> None:
    body = {"messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 1_000}
    own = {"openai": "sk-own"}
    prompt = PromptBounds(body).prompt(model())  # the bound the limiter reserves (gateway.tokens.bound)

    estimate = request_estimate(body, (model(),), prompt_tokens=2_000, pricing=BYOK, own_key_endpoints=own)

    # (prompt + 1,000) tokens / 1k x $0.0002 + $0.001
    assert estimate.worst_price == (Decimal(prompt + 1_000) / 1000 * Decimal("0.0002") + Decimal("0.001"))


def test_the_dearest_candidate_sets_the_reservation_whether_byok_or_not() -> None:
    body = {"messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 1_000}
    dear = PlanPricing(byok_fee_per_1k_tokens=Decimal(1), byok_fee_per_request=Decimal(0))
    candidates = (model(), model("vllm/m", endpoint="vllm"))
    prompt = PromptBounds(body).prompt(model())

    estimate = request_estimate(
        body, candidates, prompt_tokens=2_000, pricing=dear, own_key_endpoints={"openai": "sk-own"}
    )

    # the BYOK fee of its tokens at $1 per 1k beats vllm/m's catalogue price for as many
    assert estimate.worst_price == Decimal(prompt + 1_000) / 1000
