"""Routing is pure: task classification, chain filtering and the errors when nothing fits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gateway.api.errors import ApiError
from gateway.pricing import ModelRule, PlanPricing, UnitPrices, provider_cost
from gateway.routing import ModelInfo, classify, model_allowed, route, task_type_override


def model(name: str, **overrides: Any) -> ModelInfo:
    values: dict[str, Any] = {
        "name": name,
        "provider": "simulator",
        "endpoint": "simulator",
        "upstream_model": name,
        "input_price_per_mtok": Decimal("1"),
        "output_price_per_mtok": Decimal("4"),
        "context_window": 16_000,
        "max_output_tokens": 4_096,
        "supports_vision": False,
        "supports_tools": True,
        "supports_n": True,
    }
    values.update(overrides)
    return ModelInfo(**values)


CATALOGUE = {
    "small": model("small", context_window=8_000),
    "big": model("big", context_window=200_000),
    "eyes": model("eyes", supports_vision=True),
    "claude": model("claude", provider="anthropic", supports_n=False),
    "no-tools": model("no-tools", supports_tools=False),
}
CHAINS = {"simple": ["small", "big"], "reasoning": ["big"], "code": ["claude", "big"], "vision": ["eyes"]}


def user(text: str) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}]}


@pytest.mark.parametrize(
    ("text", "task"),
    [
        ("What is the capital of France?", "simple"),
        ("Thanks!", "simple"),
        ("```python\nprint(1)\n```", "code"),
        ("def add(a, b):\n    return a + b", "code"),
        ("Why does my regex not match?", "code"),
        ("Traceback (most recent call last):\n  File x", "code"),
        ("SELECT name FROM users WHERE id = 1", "code"),
        ("Explain step by step how inflation works", "reasoning"),
        ("Compare the trade-offs of the two plans", "reasoning"),
        ("word " * 400, "reasoning"),
    ],
)
def test_tasks_are_classified_by_the_documented_rules(text: str, task: str) -> None:
    assert classify(user(text)) == task


def test_an_image_part_makes_it_a_vision_task() -> None:
    body = {
        "model": "auto",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "def f(): pass"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            }
        ],
    }
    assert classify(body) == "vision"


def test_the_header_then_metadata_override_the_classification() -> None:
    body = {**user("Hello"), "metadata": {"task_type": "code"}}
    assert task_type_override(body, None) == "code"
    assert task_type_override(body, "reasoning") == "reasoning"
    with pytest.raises(ApiError):
        task_type_override(body, "poetry")


def test_aliases_pick_their_chain_and_explicit_models_only_themselves() -> None:
    assert [
        m.name for m in route(user("hi"), catalogue=CATALOGUE, chains=CHAINS, prompt_tokens=10).candidates
    ] == [
        "small",
        "big",
    ]
    coded = route({**user("hi"), "model": "auto:code"}, catalogue=CATALOGUE, chains=CHAINS, prompt_tokens=10)
    assert (coded.task_type, [m.name for m in coded.candidates]) == ("code", ["claude", "big"])
    named = route({**user("hi"), "model": "big"}, catalogue=CATALOGUE, chains=CHAINS, prompt_tokens=10)
    assert (named.task_type, [m.name for m in named.candidates]) == ("", ["big"])


def test_models_that_cannot_serve_the_request_are_skipped_with_a_reason() -> None:
    long = route(user("hi"), catalogue=CATALOGUE, chains=CHAINS, prompt_tokens=9_000)
    assert [m.name for m in long.candidates] == ["big"]
    assert long.skipped[0][0] == "small"
    assert "context window" in long.skipped[0][1]

    several = route(
        {**user("hi"), "model": "auto:code", "n": 2}, catalogue=CATALOGUE, chains=CHAINS, prompt_tokens=10
    )
    assert [m.name for m in several.candidates] == ["big"]

    output = route({**user("hi"), "max_tokens": 7_995}, catalogue=CATALOGUE, chains=CHAINS, prompt_tokens=10)
    assert [m.name for m in output.candidates] == ["big"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({**user("hi"), "model": "gpt-99"}, "model_not_found"),
        ({**user("hi"), "model": "claude", "n": 3}, "unsupported_value"),
        ({**user("hi"), "model": "small"} | {"max_tokens": 100_000}, "context_length_exceeded"),
        (
            {**user("hi"), "model": "no-tools", "tools": [{"type": "function", "function": {"name": "f"}}]},
            "unsupported_value",
        ),
        ({"model": "auto:vision", "messages": [{"role": "user", "content": "hi"}]} | {"n": 1}, None),
    ],
)
def test_when_nothing_fits_the_error_says_why(body: dict[str, Any], code: str | None) -> None:
    if code is None:  # vision chain without an image still works: the eyes model can read text
        assert route(body, catalogue=CATALOGUE, chains=CHAINS, prompt_tokens=10).candidates
        return
    with pytest.raises(ApiError) as raised:
        route(body, catalogue=CATALOGUE, chains=CHAINS, prompt_tokens=10)
    assert (raised.value.status, raised.value.code) == (400, code)


def test_an_empty_chain_is_a_clear_error() -> None:
    with pytest.raises(ApiError, match="No models are configured"):
        route(user("hi"), catalogue=CATALOGUE, chains={"simple": []}, prompt_tokens=10)


def test_allow_lists() -> None:
    assert model_allowed("anything", ())
    assert model_allowed("auto", ("auto", "small"))
    assert not model_allowed("big", ("auto", "small"))


def test_cost_and_price_are_exact_decimals() -> None:
    gpt = model("gpt-4o-mini", input_price_per_mtok=Decimal("0.15"), output_price_per_mtok=Decimal("0.60"))

    cost = provider_cost(gpt, 1_234, 567)

    assert cost == Decimal("0.00052530")  # 1234 * 0.15e-6 + 567 * 0.60e-6 = 0.0001851 + 0.0003402
    units = PlanPricing(markup_percent=Decimal(20)).unit_prices(gpt)
    assert units == UnitPrices(Decimal("0.18"), Decimal("0.72"))
    assert units.amount(1_234, 567) == Decimal("0.00063036")
    assert UnitPrices(Decimal("0.015"), Decimal(0)).amount(1, 0) == Decimal("0.00000002")  # half-up


def test_plan_rules_price_a_model_explicitly_or_with_its_own_markup() -> None:
    gpt = model("gpt-4o-mini", input_price_per_mtok=Decimal("0.15"), output_price_per_mtok=Decimal("0.60"))
    fixed = PlanPricing(rules={"gpt-4o-mini": ModelRule(None, Decimal("0.25"), Decimal("1.00"))})
    marked = PlanPricing(rules={"gpt-4o-mini": ModelRule(markup_percent=Decimal(50))})

    assert fixed.unit_prices(gpt) == UnitPrices(Decimal("0.25"), Decimal("1.00"))
    assert marked.unit_prices(gpt) == UnitPrices(Decimal("0.225"), Decimal("0.90"))
    assert fixed.unit_prices(gpt).percent(Decimal(10)) == UnitPrices(Decimal("0.025"), Decimal("0.1"))


def test_a_plans_unit_prices_follow_a_new_catalogue_price_of_the_same_model() -> None:
    pricing = PlanPricing(markup_percent=Decimal(20))
    before = model("gpt-4o-mini", input_price_per_mtok=Decimal("0.15"), output_price_per_mtok=Decimal("0.60"))
    after = model("gpt-4o-mini", input_price_per_mtok=Decimal("0.50"), output_price_per_mtok=Decimal("2.00"))

    assert (
        pricing.unit_prices(before)
        == pricing.unit_prices(before)
        == UnitPrices(Decimal("0.18"), Decimal("0.72"))
    )
    assert pricing.unit_prices(after) == UnitPrices(Decimal("0.6"), Decimal("2.4"))
