"""What a request may use at most, known before it is sent: the figures the limiter takes and reserves.

Budgets and token caps are hard caps: the reservation is an upper bound that the provider's count cannot
exceed (gateway.tokens.bound for the prompt; ``max_completion_tokens`` / ``max_tokens``, else the model's
output limit, for the completion), so concurrent requests admitted together cannot overshoot. docs/LIMITS.md
says what can still overshoot, and by how much.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.pricing import PlanPricing
from gateway.routing import ModelInfo
from gateway.tokens import PromptBounds, prediction_token_bound


@dataclass(frozen=True, slots=True)
class Estimate:
    tpm_tokens: int  # taken from the TPM buckets now: prompt estimate plus the output asked for (as OpenAI)
    worst_tokens: int  # reserved against token caps: the most any candidate may bill, prompt plus output
    worst_price: Decimal  # reserved against spend budgets: the most any candidate may cost, at its prices


def request_estimate(
    body: Mapping[str, Any],
    candidates: tuple[ModelInfo, ...],
    *,
    prompt_tokens: int,
    pricing: PlanPricing,
    own_key_endpoints: Mapping[str, str],
) -> Estimate:
    """The TPM take (from the routing estimate ``prompt_tokens``) and the worst case of ``body`` over
    ``candidates``: per candidate, an upper bound of its prompt tokens plus the most output it may give,
    at that candidate's unit prices; the largest tokens and the largest price are taken separately."""
    n = _positive(body.get("n")) or 1
    asked = _positive(body.get("max_completion_tokens")) or _positive(body.get("max_tokens"))
    bounds = PromptBounds(body)
    predicted = prediction_token_bound(body)
    worst_tokens, worst_price = 0, Decimal(0)
    for model in candidates:
        prompt = bounds.prompt(model)
        output = (output_token_bound(model, asked) + predicted) * n
        worst_tokens = max(worst_tokens, prompt + output)
        own_key = model.endpoint in own_key_endpoints  # the provider bills the tokens; we charge the BYOK fee
        price = pricing.request_unit_prices(model, own_key=own_key).amount(prompt, output)
        worst_price = max(worst_price, price)
    return Estimate(
        tpm_tokens=prompt_tokens + (asked or 0) * n, worst_tokens=worst_tokens, worst_price=worst_price
    )


def output_token_bound(model: ModelInfo, asked: int | None) -> int:
    """The most completion tokens one choice of ``model`` may bill: what was asked, within the model's
    output limit; unasked, that limit, else its whole context window.

    Not the context window minus the prompt: the prompt's figure here is an upper bound, and the window
    minus an upper bound could be less than the room the real prompt leaves."""
    limit = model.max_output_tokens or model.context_window
    if asked is None:
        return limit
    return min(asked, limit) if limit else asked


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
