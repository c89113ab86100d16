"""Leak 2: events the database rejected. A model name over 200 characters or with a NUL byte, and NUL bytes
in content, made the consumer dead-letter the event (never billed) or the cache store fail. Now every field is
bounded where the event is built, so storing never fails for the data's shape."""

from __future__ import annotations

import random
import string
import time
from decimal import Decimal

import httpx
import pytest
import stripe
from django_tenants.utils import schema_context

from config.redis import redis_client
from gateway.invalidation import invalidate_publish
from gateway.metering.dead_letters import DEAD_STREAM
from gateway.metering.events import TEXT_LIMITS, Attempt, UsageEvent, usage_event_json, usage_event_parse
from gateway.metering.store import usage_store
from gateway.models import CacheSettings, RequestRecord
from tests.gateway.api.conftest import Simulator
from tests.ledger.conftest import Ledgerco, assert_reconciles, ledger_until

NUL = "\x00"


def _post(gateway: str, key: str, body: object) -> httpx.Response:
    return httpx.post(
        f"{gateway}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30
    )


@pytest.mark.parametrize(
    "model",
    ["m" * 10_000, f"sim/fast{NUL}", f"{NUL}\x1b[31m\u202eevil", "\ud7ff\ue000" * 300],
    ids=["10k-characters", "nul", "control-characters", "300-odd-unicode"],
)
def test_a_hostile_model_name_is_answered_and_recorded_once(
    gateway: str, ledgerco: Ledgerco, sim: Simulator, model: str
) -> None:
    answer = _post(gateway, ledgerco.key, {"model": model, "messages": [{"role": "user", "content": "hi"}]})

    assert answer.status_code in (400, 404)
    (row,) = ledger_until(ledgerco, 1)
    assert row.request_id == answer.headers["x-request-id"]
    assert len(row.requested_model) <= 200
    assert NUL not in row.requested_model
    assert redis_client().xlen(DEAD_STREAM) == 0


def test_nul_bytes_in_content_are_answered_billed_and_never_break_the_cache(
    gateway: str, ledgerco: Ledgerco, sim: Simulator, stripe_client: stripe.StripeClient
) -> None:
    with schema_context(ledgerco.schema):
        CacheSettings.objects.update_or_create(pk=1, defaults={"enabled": True})
    invalidate_publish(f"tenant:{ledgerco.tenant.pk}")
    time.sleep(0.15)
    try:
        nul = {"model": "sim/echo", "messages": [{"role": "user", "content": f"a{NUL}b{NUL}" * 50}]}
        plain = {"model": "sim/fast", "messages": [{"role": "user", "content": "Say hello twice"}]}
        answers = [_post(gateway, ledgerco.key, body) for body in (nul, nul, {**nul, "stream": True}, plain)]
        answers.append(_post(gateway, ledgerco.key, plain))
    finally:
        with schema_context(ledgerco.schema):
            CacheSettings.objects.filter(pk=1).delete()
        invalidate_publish(f"tenant:{ledgerco.tenant.pk}")

    assert [a.status_code for a in answers] == [200] * 5
    # The echoed answers hold NUL: PostgreSQL cannot store them, so they are not cached (and nothing
    # fails); the cache itself works, as the plain prompt's second answer shows.
    assert [a.headers["x-gatehouse-cache"] for a in answers] == ["miss", "miss", "miss", "miss", "hit-exact"]
    rows = ledger_until(ledgerco, 5)
    assert len(rows) == 5
    assert all(r.input_tokens > 0 and r.output_tokens > 0 for r in rows)
    assert redis_client().xlen(DEAD_STREAM) == 0
    assert_reconciles(ledgerco, stripe_client)


def _hostile_text(rng: random.Random) -> object:
    kind = rng.randrange(7)
    if kind == 0:
        odd = [NUL, "\x01", "\x7f", "\x85", "\ud800", "\udfff", "\u00e9", "\U0001d54f"]
        return "".join(rng.choice(odd) for _ in range(50))
    if kind == 1:
        return rng.choice(string.printable) * rng.choice([0, 1, 65, 201, 5_000])
    if kind == 2:
        return rng.choice([None, 12, 3.5, -1, True, ["a"], {"b": 1}])
    if kind == 3:
        return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randrange(300)))
    return "".join(rng.choice(string.ascii_letters) for _ in range(rng.randrange(40)))


def _hostile_number(rng: random.Random) -> object:
    return rng.choice(
        [-(2**70), -1, 0, 2**31, 2**63, 10**30, 1.5, float("nan"), float("inf"), None, "12", True]
    )


def _hostile_money(rng: random.Random) -> object:
    return rng.choice(
        [
            Decimal("-1"),
            Decimal("NaN"),
            Decimal("Infinity"),
            Decimal("1e30"),
            Decimal("0.123456789123"),
            "x",
            3,
        ]
    )


def _hostile_event(rng: random.Random, org: Ledgerco, number: int) -> UsageEvent:
    values: dict[str, object] = {
        "request_id": f"req_hostile_{number}",
        "tenant_schema": org.schema,
        "tenant_id": org.tenant.pk,
        "created_ms": rng.choice([1_800_000_000_000, 0, -5, 10**20]),
        "tokens_estimated": rng.choice([True, False, 1, None]),
        "stream": rng.choice([True, "yes"]),
        "attempts": tuple(
            Attempt(_hostile_text(rng), _hostile_text(rng), _hostile_number(rng), _hostile_text(rng), -3)  # type: ignore[arg-type]
            for _ in range(rng.choice([0, 1, 200]))
        ),
        "cache_similarity": rng.choice([None, 2.0, -7.0, float("nan"), 0.93]),
        "pii_counts": {str(_hostile_text(rng)): _hostile_number(rng) for _ in range(rng.choice([0, 3, 100]))},
        "client_request_id": _hostile_text(rng),
    }
    for name in TEXT_LIMITS:
        if name not in values:
            values[name] = _hostile_text(rng)
    for name in ("input_tokens", "output_tokens", "latency_ms", "ttft_ms", "http_status"):
        values[name] = _hostile_number(rng)
    for name in ("provider_cost", "price", "cache_saving", "unit_input_price", "unit_output_price"):
        values[name] = _hostile_money(rng)
    return UsageEvent(**values)  # type: ignore[arg-type]


def test_usage_events_built_from_random_hostile_values_are_all_stored(ledgerco: Ledgerco) -> None:
    rng = random.Random(20261207)  # fixed: a failure can be reproduced
    events = [_hostile_event(rng, ledgerco, number) for number in range(400)]

    # through the wire form and back, as the stream carries them, then one store per event
    for event in events:
        assert usage_store([usage_event_parse(usage_event_json(event))]) == 1

    with schema_context(ledgerco.schema):
        assert RequestRecord.objects.filter(request_id__startswith="req_hostile_").count() == len(events)
