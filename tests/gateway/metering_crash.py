"""Helpers of the metering tests: a sample usage event, and a child process that emits events like a web
process does and then waits to be killed (`python -m tests.gateway.metering_crash --schema S ...`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from decimal import Decimal
from typing import Any

from gateway.metering.events import Attempt, UsageEvent

CREATED_MS = 1_735_787_045_678  # 2025-01-02 03:04:05.678 UTC


def make_event(request_id: str, *, schema: str, tenant_id: int, **overrides: Any) -> UsageEvent:
    """An event with a distinct, non-default value in every field (a fallback after a 429, streamed)."""
    values: dict[str, Any] = {
        "request_id": request_id,
        "tenant_schema": schema,
        "tenant_id": tenant_id,
        "api_key_prefix": "abcd1234efgh",
        "created_ms": CREATED_MS,
        "requested_model": "auto",
        "served_model": "sim/smart",
        "provider": "simulator",
        "task_type": "reasoning",
        "input_tokens": 1200,
        "output_tokens": 345,
        "tokens_estimated": True,
        "provider_cost": Decimal("0.00123456"),
        "price": Decimal("0.00234567"),
        "unit_input_price": Decimal("0.24"),
        "unit_output_price": Decimal("0.96"),
        "unit_request_price": Decimal("0.00012"),
        "latency_ms": 812,
        "ttft_ms": 95,
        "cache_status": "hit-semantic",
        "cache_similarity": 0.9375,
        "cache_saving": Decimal("0.00111111"),
        "pii_counts": {"email": 2, "card": 1},
        "http_status": 200,
        "error_class": "",
        "stream": True,
        "client_disconnected": True,
        "client_request_id": "trace-4f2a",
        "attempts": (
            Attempt(model="sim/fast", provider="simulator", status=429, error="rate_limited", latency_ms=12),
            Attempt(model="sim/smart", provider="simulator", status=200, error="", latency_ms=800),
        ),
    }
    values.update(overrides)
    return UsageEvent(**values)


async def _emit_all(schema: str, tenant_id: int, prefix: str, count: int) -> None:
    from gateway.metering.emit import usage_emit

    # Concurrent, like the requests of one busy web process.
    await asyncio.gather(
        *(
            usage_emit(make_event(f"{prefix}-{number}", schema=schema, tenant_id=tenant_id))
            for number in range(count)
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schema", required=True)
    parser.add_argument("--tenant-id", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    import django

    django.setup()
    asyncio.run(_emit_all(args.schema, args.tenant_id, args.prefix, args.count))
    print("responded", flush=True)  # noqa: T201 - the parent SIGKILLs us as soon as it reads this
    time.sleep(600)


if __name__ == "__main__":
    main()
