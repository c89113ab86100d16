"""The usage event: exactly one per inference request, successful or not.

The hot path builds it and appends it to a Redis Stream (gateway.metering.emit); the usage consumer stores it
as a `RequestRecord` in the tenant's schema, idempotent on `request_id`. Money travels as Decimal strings.

An event is bounded where it is built (`__post_init__`): every string is cut to its column's length and
cleaned of NUL and control characters, every number clamped to what its column holds, lists and maps capped.
So whatever a client sends (a 10 KB model name, NUL bytes, a huge `n`), storing the event never fails for the
shape of its data, and the same holds for events read back from the stream or a spool file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

import orjson

from gateway.bounds import (
    INT16_MAX,
    INT32_MAX,
    MAX_EPOCH_MS,
    int_bounded,
    label_bounded,
    money_bounded,
    optional_int_bounded,
    ratio_bounded,
    text_bounded,
)

# The columns' sizes (gateway.models.RequestRecord; a test keeps them equal).
TEXT_LIMITS = {
    "request_id": 64,
    "tenant_schema": 63,  # a PostgreSQL identifier
    "api_key_prefix": 16,
    "requested_model": 200,
    "served_model": 200,
    "provider": 50,
    "task_type": 20,
    "cache_status": 16,
    "error_class": 100,
}
CLIENT_REQUEST_ID_LIMIT = 128
MAX_ATTEMPTS = 64
MAX_PII_CATEGORIES = 32
_MONEY = (
    "provider_cost",
    "price",
    "cache_saving",
    "unit_input_price",
    "unit_output_price",
    "unit_request_price",
)
_MONEY_MAX = Decimal("99999999.99999999")  # DecimalField(max_digits=16, decimal_places=8)
_REQUIRED = ("request_id", "tenant_schema", "tenant_id", "created_ms")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One upstream call: which deployment, how it ended, and why we moved on if we did."""

    model: str
    provider: str
    status: int | None  # upstream HTTP status, None when there was no response
    error: str  # "" on success, else the ProviderError kind (e.g. "rate_limited", "timeout")
    latency_ms: int

    def __post_init__(self) -> None:
        _set(self, "model", text_bounded(self.model, TEXT_LIMITS["served_model"]))
        _set(self, "provider", text_bounded(self.provider, TEXT_LIMITS["provider"]))
        _set(self, "status", optional_int_bounded(self.status, 0, 999))
        _set(self, "error", text_bounded(self.error, TEXT_LIMITS["error_class"]))
        _set(self, "latency_ms", int_bounded(self.latency_ms))


@dataclass(frozen=True, slots=True)
class UsageEvent:
    request_id: str  # made by the gateway, never by a client
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
    client_request_id: str = ""  # the client's own x-request-id: a label, echoed and searchable
    recovered: bool = False  # settled by the reaper from the last checkpoint of a process that died

    def __post_init__(self) -> None:
        # Checks first, replacing only what is out of bounds: this runs on the hot path for every event.
        for name, limit in TEXT_LIMITS.items():
            value = getattr(self, name)
            if type(value) is not str or len(value) > limit or not (value.isascii() and value.isprintable()):
                _set(self, name, text_bounded(value, limit))
        if self.client_request_id or type(self.client_request_id) is not str:
            _set(self, "client_request_id", label_bounded(self.client_request_id, CLIENT_REQUEST_ID_LIMIT))
        _bound_int(self, "tenant_id", 2**63 - 1)
        _bound_int(self, "created_ms", MAX_EPOCH_MS)
        _bound_int(self, "input_tokens")
        _bound_int(self, "output_tokens")
        _bound_int(self, "latency_ms")
        if self.ttft_ms is not None:
            _bound_int(self, "ttft_ms")
        _bound_int(self, "http_status", INT16_MAX)
        for name in _MONEY:
            value = getattr(self, name)
            if type(value) is not Decimal or value.is_signed() or not value.is_finite() or value > _MONEY_MAX:
                _set(self, name, money_bounded(value))
        if self.cache_similarity is not None:
            _set(self, "cache_similarity", ratio_bounded(self.cache_similarity))
        if type(self.attempts) is not tuple or len(self.attempts) > MAX_ATTEMPTS:
            attempts = tuple(self.attempts)
            if len(attempts) > MAX_ATTEMPTS:  # the first ones and the one that served (or failed last)
                attempts = (*attempts[: MAX_ATTEMPTS - 1], attempts[-1])
            _set(self, "attempts", attempts)
        if self.pii_counts:
            _set(self, "pii_counts", _counts_bounded(self.pii_counts))
        for name in ("tokens_estimated", "stream", "client_disconnected", "recovered"):
            if type(getattr(self, name)) is not bool:
                _set(self, name, bool(getattr(self, name)))

    @property
    def fallback_count(self) -> int:
        """How many models were tried before the one that served (or before giving up)."""
        models = []
        for attempt in self.attempts:
            if attempt.model not in models:
                models.append(attempt.model)
        return min(max(len(models) - 1, 0), INT16_MAX)

    def to_json_dict(self) -> dict[str, Any]:
        """The event as JSON types (Decimals as strings): what `usage_event_json` writes."""
        data: dict[str, Any] = orjson.loads(usage_event_json(self))
        return data

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> UsageEvent:
        """The event of a stream entry or spool line, from any version: fields it lacks take their
        defaults, fields it does not know are ignored. Raises KeyError without an identity (request id,
        tenant, time), ValueError or TypeError when a value is of the wrong kind."""
        known = {f.name for f in fields(cls)}
        values = {name: value for name, value in data.items() if name in known}
        missing = [name for name in _REQUIRED if name not in values]
        if missing:
            raise KeyError(f"missing {', '.join(missing)}")
        for name in _REQUIRED:
            kind = str if name in ("request_id", "tenant_schema") else int
            value = values[name]
            if not isinstance(value, kind) or isinstance(value, bool) or value == "":
                raise TypeError(f"{name} is not a non-empty {kind.__name__}")
        defaults = {
            "api_key_prefix": "",
            "requested_model": "",
            "served_model": "",
            "provider": "",
            "task_type": "",
            "input_tokens": 0,
            "output_tokens": 0,
            "tokens_estimated": False,
            "provider_cost": "0",
            "price": "0",
            "latency_ms": 0,
            "ttft_ms": None,
            "cache_status": "miss",
            "http_status": 0,
            "error_class": "",
            "stream": False,
        }
        values = {**defaults, **values}
        for name in _MONEY:
            if name in values:
                values[name] = Decimal(str(values[name]))
        values["attempts"] = tuple(Attempt(**a) for a in values.get("attempts") or ())
        return cls(**values)


def usage_event_json(event: UsageEvent) -> bytes:
    """The wire form of an event: one JSON object, the same in the stream, spool files and open records.
    (orjson writes the dataclass itself, ten times faster than `asdict`: this runs on the hot path.)"""
    return orjson.dumps(event, default=_json_default)


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def usage_event_parse(raw: str | bytes) -> UsageEvent:
    """An event from its wire form (a stream entry's field, a spool line). Raises orjson.JSONDecodeError,
    KeyError, TypeError, ValueError or ArithmeticError when it cannot be parsed at all."""
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise TypeError("the event is not a JSON object")
    return UsageEvent.from_json_dict(data)


def _set(instance: object, name: str, value: object) -> None:
    object.__setattr__(instance, name, value)


def _bound_int(instance: object, name: str, high: int = INT32_MAX) -> None:
    value = getattr(instance, name)
    if type(value) is not int or not 0 <= value <= high:
        _set(instance, name, int_bounded(value, 0, high))


def _counts_bounded(counts: object) -> dict[str, int]:
    if not isinstance(counts, dict):
        return {}
    bounded: dict[str, int] = {}
    for key, value in counts.items():
        if len(bounded) >= MAX_PII_CATEGORIES:
            break
        bounded[text_bounded(key, 40)] = int_bounded(value)
    return bounded
