"""The usage event: exactly one per inference request, successful or not.

The hot path builds it and appends it to a Redis Stream (gateway.metering.emit); the usage consumer stores it
as a `RequestRecord` in the tenant's schema, idempotent on `request_id`. Money travels as Decimal strings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Attempt:
    """One upstream call: which deployment, how it ended, and why we moved on if we did."""

    model: str
    provider: str
    status: int | None  # upstream HTTP status, None when there was no response
    error: str  # "" on success, else the ProviderError kind (e.g. "rate_limited", "timeout")
    latency_ms: int


@dataclass(frozen=True, slots=True)
class UsageEvent:
    request_id: str
    tenant_schema: str
    tenant_id: int
    api_key_prefix: str
    created_ms: int  # when the request arrived, epoch milliseconds
    requested_model: str
    served_model: str  # "" when nothing served it
    provider: str
    task_type: str  # simple / reasoning / code / vision, or "" when the client named a model
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    provider_cost: Decimal
    price: Decimal
    latency_ms: int
    ttft_ms: int | None
    cache_status: str  # miss / hit-exact / hit-semantic
    http_status: int
    error_class: str  # "" on success
    stream: bool
    client_disconnected: bool = False
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)
    cache_similarity: float | None = None  # cosine of a semantic hit (1.0 for an exact hit)
    cache_saving: Decimal = Decimal(0)  # the provider cost a cache hit avoided
    pii_counts: dict[str, int] = field(default_factory=dict)  # distinct values redacted, per category
    unit_input_price: Decimal = Decimal(0)  # charged per 1M input tokens (the price's rate)
    unit_output_price: Decimal = Decimal(0)  # charged per 1M output tokens
    unit_request_price: Decimal = Decimal(0)  # charged per request on top (the BYOK per-request fee)

    @property
    def fallback_count(self) -> int:
        """How many models were tried before the one that served (or before giving up)."""
        models = []
        for attempt in self.attempts:
            if attempt.model not in models:
                models.append(attempt.model)
        return max(len(models) - 1, 0)

    def to_json_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["v"] = SCHEMA_VERSION
        data["provider_cost"] = str(self.provider_cost)
        data["price"] = str(self.price)
        data["cache_saving"] = str(self.cache_saving)
        data["unit_input_price"] = str(self.unit_input_price)
        data["unit_output_price"] = str(self.unit_output_price)
        data["unit_request_price"] = str(self.unit_request_price)
        return data

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> UsageEvent:
        data = dict(data)
        data.pop("v", None)
        data["provider_cost"] = Decimal(data["provider_cost"])
        data["price"] = Decimal(data["price"])
        data["cache_saving"] = Decimal(data.get("cache_saving", "0"))
        data["unit_input_price"] = Decimal(data.get("unit_input_price", "0"))
        data["unit_output_price"] = Decimal(data.get("unit_output_price", "0"))
        data["unit_request_price"] = Decimal(data.get("unit_request_price", "0"))
        data["attempts"] = tuple(Attempt(**a) for a in data.get("attempts", ()))
        return cls(**data)
