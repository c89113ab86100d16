"""What a request reserves before it is sent (gateway.limits.estimate): per candidate, an upper bound of its
prompt plus the most output it may give, at that candidate's prices; the worst over the candidates."""

from __future__ import annotations

import base64
from dataclasses import replace
from decimal import Decimal
from typing import Any

from gateway.limits.estimate import Estimate, output_token_bound, request_estimate
from gateway.pricing import PlanPricing
from gateway.routing import ModelInfo
from gateway.tokens import prompt_token_bound
from tests.gateway.test_token_bound import model

PRICING = PlanPricing(markup_percent=Decimal(0))
QUESTION = {"role": "user", "content": "=" * 4_000}  # o200k: 63 tokens; the simulator: 1000


def _priced(
    name: str, provider: str, upstream: str, price_in: str, price_out: str, **sizes: int
) -> ModelInfo:
    return replace(
        model(name, provider, upstream, window=sizes.get("window", 128_000)),
        input_price_per_mtok=Decimal(price_in),
        output_price_per_mtok=Decimal(price_out),
        max_output_tokens=sizes.get("max_output", 4_096),
    )


SIM_CHEAP = _priced("sim/fast", "simulator", "sim/fast", "0.10", "0.40", window=16_000)
SIM_DEAR = _priced("sim/smart", "simulator", "sim/smart", "2.00", "8.00")
GPT_4O = _priced("gpt-4o", "openai", "gpt-4o", "2.50", "10.00", max_output=16_384)
CLAUDE = _priced("claude", "anthropic", "claude-haiku-4-5", "1.00", "5.00", max_output=64_000)


def estimate(body: dict[str, Any], *candidates: ModelInfo, own: tuple[str, ...] = ()) -> Estimate:
    return request_estimate(
        body,
        candidates,
        prompt_tokens=70,
        pricing=PRICING,
        own_key_endpoints=dict.fromkeys(own, "key"),
    )


def test_the_simulators_count_is_reserved_not_the_o200k_estimate() -> None:
    got = estimate({"messages": [QUESTION], "max_tokens": 10}, SIM_DEAR)
    assert got.worst_tokens == 1_001 + 10
    assert got.worst_price == Decimal("0.00208200")  # 1001 x 2.00 + 10 x 8.00, per million
    assert got.tpm_tokens == 70 + 10  # TPM stays on the estimate: it mimics OpenAI's own accounting


def test_the_worst_price_and_the_worst_tokens_may_come_from_different_candidates() -> None:
    body = {"messages": [QUESTION], "max_tokens": 100}
    got = estimate(body, SIM_CHEAP, SIM_DEAR, CLAUDE)
    claude_prompt = prompt_token_bound(body, CLAUDE)
    assert got.worst_tokens == claude_prompt + 100  # bytes: 4,000 and overheads
    assert got.worst_price == max(
        Decimal(claude_prompt * 1 + 100 * 5) / 1_000_000, Decimal(1_001 * 2 + 100 * 8) / 1_000_000
    )


def test_a_candidate_on_the_tenants_own_key_costs_nothing_but_counts_its_tokens() -> None:
    got = estimate({"messages": [QUESTION], "max_tokens": 10}, SIM_DEAR, own=("simulator",))
    assert got.worst_price == 0
    assert got.worst_tokens == 1_011


def test_the_output_is_what_was_asked_within_the_models_limit_times_n() -> None:
    assert output_token_bound(GPT_4O, 500) == 500
    assert output_token_bound(GPT_4O, 1_000_000) == 16_384
    assert output_token_bound(GPT_4O, None) == 16_384
    unlimited = _priced("x", "openai", "gpt-4o", "1", "1", window=50_000, max_output=0)
    assert output_token_bound(unlimited, None) == 50_000  # the whole window, not the window minus a bound
    body = {"messages": [QUESTION], "max_completion_tokens": 30, "max_tokens": 999, "n": 3}
    assert estimate(body, SIM_DEAR).worst_tokens == 1_001 + 90


def test_a_predicted_output_is_reserved_as_output() -> None:
    body = {"messages": [QUESTION], "max_tokens": 10, "prediction": {"type": "content", "content": "x" * 500}}
    assert estimate(body, GPT_4O).worst_tokens == prompt_token_bound(body, GPT_4O) + 510


def test_a_large_audio_part_reserves_more_than_the_same_request_without_it() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": base64.b64encode(bytes(600_000)).decode()}}
    plain = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Transcribe"}]}]}
    spoken = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Transcribe"}, audio]}]}
    for candidate in (GPT_4O, CLAUDE):
        before, after = estimate(plain, candidate), estimate(spoken, candidate)
        assert after.worst_tokens >= before.worst_tokens + 600_000 // 50
        assert after.worst_price > before.worst_price
