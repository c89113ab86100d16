"""What a request may use at most, known before it is sent: the figures the limiter takes and reserves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.pricing import PlanPricing
from gateway.routing import ModelInfo


@dataclass(frozen=True, slots=True)
class Estimate:
    tpm_tokens: int  # taken from the TPM buckets now: the prompt plus the output asked for (as OpenAI counts)
    worst_tokens: int  # reserved against token caps: the prompt plus the most output any candidate may give
    worst_price: Decimal  # reserved against spend budgets: worst_tokens at the dearest candidate's price


def request_estimate(
    body: Mapping[str, Any],
    candidates: tuple[ModelInfo, ...],
    *,
    prompt_tokens: int,
    pricing: PlanPricing,
    own_key_endpoints: Mapping[str, str],
) -> Estimate:
    n = body.get("n") or 1
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    worst_tokens, worst_price = prompt_tokens, Decimal(0)
    for model in candidates:
        room = max(model.context_window - prompt_tokens, 0)
        output = min(asked, room) if asked else (model.max_output_tokens or room)
        if model.max_output_tokens:
            output = min(output, model.max_output_tokens)
        worst_tokens = max(worst_tokens, prompt_tokens + output * n)
        own_key = model.endpoint in own_key_endpoints  # the provider bills the tokens; we charge the BYOK fee
        price = pricing.request_unit_prices(model, own_key=own_key).amount(prompt_tokens, output * n)
        worst_price = max(worst_price, price)
    return Estimate(
        tpm_tokens=prompt_tokens + (asked or 0) * n, worst_tokens=worst_tokens, worst_price=worst_price
    )
