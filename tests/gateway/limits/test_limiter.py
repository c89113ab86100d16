"""The limiter's Lua scripts against the test Redis, on a test clock (gateway.limits.service)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from config.redis import redis_client
from gateway.api.errors import ApiError
from gateway.limits import deny, service
from gateway.limits.clock import duration
from gateway.limits.deny import Denial, deny_check, deny_clear, deny_remember
from gateway.limits.policy import Limits, LimitSet
from gateway.limits.service import Admission, limits_admit, limits_settle_later, scope_tags

NOV_1 = 1793491200000  # 2026-11-01T00:00:00Z
NOW = NOV_1 + 26 * 86_400_000  # 2026-11-27


class Clock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.set(NOW)

    def set(self, ms: int) -> None:
        self.ms = ms
        self.path.write_text(str(ms))

    def advance(self, seconds: float) -> None:
        self.set(self.ms + int(seconds * 1000))


@pytest.fixture
def clock(tmp_path: Path) -> Iterator[Clock]:
    path = tmp_path / "clock"
    with override_settings(GATEHOUSE_TEST_CLOCK_FILE=str(path)):
        service._down_until = 0.0
        deny._inflight.clear()
        deny_clear()
        yield Clock(path)


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(main())  # type: ignore[arg-type]


async def admit(
    limits: LimitSet,
    rid: str,
    *,
    tokens: int = 10,
    price: str = "0",
    worst_tokens: int = 0,
    key: str = "key1",
    schema: str = "t_nobody",
) -> Admission | None:
    return await limits_admit(
        tenant_id=1,
        schema=schema,
        key_prefix=key,
        limits=limits,
        request_id=rid,
        tokens=tokens,
        worst_price=Decimal(price),
        worst_tokens=worst_tokens,
    )


async def outcome(coroutine: Awaitable[Admission | None]) -> Admission | ApiError | None:
    try:
        return await coroutine
    except ApiError as error:
        return error


def tenant(**limits: Any) -> LimitSet:
    return LimitSet(tenant=Limits(**limits))


def header(result: Admission | ApiError | None, name: str) -> str:
    assert result is not None
    return dict(result.headers)[name.encode()].decode()


async def settled() -> None:
    await asyncio.gather(*service._background)


def test_requests_per_minute_are_exact_then_refill(clock: Clock) -> None:
    async def main() -> list[Any]:
        limits = tenant(rpm=5)
        first = await asyncio.gather(*(outcome(admit(limits, f"r{i}")) for i in range(10)))
        clock.advance(12)  # one request's worth of refill at 5 per minute
        second = await asyncio.gather(*(outcome(admit(limits, f"s{i}")) for i in range(3)))
        clock.advance(60)
        third = await outcome(admit(limits, "t"))
        return [first, second, third]

    first, second, third = run(main)
    admitted = [r for r in first if isinstance(r, Admission)]
    refused = [r for r in first if isinstance(r, ApiError)]
    assert len(admitted) == 5
    assert len(refused) == 5
    assert {r.status for r in refused} == {429}
    assert {r.code for r in refused} == {"rate_limit_exceeded"}
    assert refused[0].error_type == "requests"
    assert header(refused[0], "retry-after") == "12"
    assert header(refused[0], "x-ratelimit-remaining-requests") == "0"
    assert header(refused[0], "x-ratelimit-limit-requests") == "5"
    assert sum(isinstance(r, Admission) for r in second) == 1
    assert header(third, "x-ratelimit-remaining-requests") == "4"
    assert header(third, "x-ratelimit-reset-requests") == "12s"


def test_a_scope_out_of_requests_is_refused_in_process_until_its_bucket_refills(clock: Clock) -> None:
    deny_clear()
    limits = LimitSet(tenant=Limits(rpm=60), key=Limits(rpm=2))
    tags = scope_tags(1, "key1", limits)

    async def main() -> list[Any]:
        return [await outcome(admit(limits, f"r{i}")) for i in range(3)]

    *_, refused = run(main)
    remembered = deny_check(tags)
    other_key = deny_check(scope_tags(1, "key2", LimitSet(tenant=Limits(rpm=60), key=Limits(rpm=2))))
    clock.advance(29)
    still = deny_check(tags)
    clock.advance(1.5)  # 30 s after the refusal: one request's worth at 2 a minute
    after = deny_check(tags)

    assert isinstance(refused, ApiError)
    assert isinstance(remembered, ApiError)
    assert remembered.status == 429
    assert remembered.quiet  # no log line per repeated refusal
    assert header(remembered, "retry-after") == "30"
    assert header(remembered, "x-ratelimit-limit-requests") == "2"
    assert header(remembered, "x-ratelimit-remaining-requests") == "0"
    assert "API key key1" in remembered.message
    assert other_key is None  # another key of the tenant is not refused
    assert isinstance(still, ApiError)
    assert header(still, "retry-after") == "1"
    assert after is None
    deny_remember("t1", Denial(until_ms=clock.ms + 5000, full_ms=0, limit=1, message="", token_headers=()))
    deny_clear()  # what a change of limits does, with the principal caches
    assert deny_check(tags) is None


def test_requests_this_process_holds_refuse_more_in_process(clock: Clock) -> None:
    limits = LimitSet(tenant=Limits(concurrency=2))
    tags = scope_tags(1, "key1", limits)

    async def main() -> list[Any]:
        held = [await admit(limits, f"r{i}") for i in range(2)]
        full = deny_check(tags)
        assert held[0] is not None
        limits_settle_later(held[0], price=Decimal(0), tokens=0, provider_tokens=0)
        return [full, deny_check(tags)]

    full, freed = run(main)
    assert isinstance(full, ApiError)
    assert full.code == "concurrency_limit_exceeded"
    assert full.quiet
    assert freed is None  # settling gave the slot back at once


def test_tokens_per_minute_are_taken_up_front_and_corrected_after(clock: Clock) -> None:
    async def main() -> list[Any]:
        limits = tenant(tpm=1000)
        a = await admit(limits, "a", tokens=400)
        b = await admit(limits, "b", tokens=400)
        refused = await outcome(admit(limits, "c", tokens=400))
        assert a is not None
        assert b is not None
        limits_settle_later(a, price=Decimal(0), tokens=100, provider_tokens=100)
        await settled()
        after = await outcome(admit(limits, "d", tokens=400))
        too_large = await outcome(admit(limits, "e", tokens=1001))
        return [b, refused, after, too_large]

    b, refused, after, too_large = run(main)
    assert header(b, "x-ratelimit-remaining-tokens") == "200"
    assert header(b, "x-ratelimit-limit-tokens") == "1000"
    assert header(b, "x-ratelimit-reset-tokens") == "48s"
    assert isinstance(refused, ApiError)
    assert refused.error_type == "tokens"
    assert header(refused, "retry-after") == "12"  # 200 tokens missing at 1000 a minute
    assert isinstance(after, Admission)  # the 300 tokens a's estimate over-took came back
    assert header(after, "x-ratelimit-remaining-tokens") == "100"
    assert isinstance(too_large, ApiError)
    assert "Request too large" in too_large.message
    assert b"retry-after" not in dict(too_large.headers)


def test_requests_in_flight_are_capped_and_freed_by_settling_or_by_the_lease(clock: Clock) -> None:
    async def main() -> list[Any]:
        limits = tenant(concurrency=3)
        held = [await admit(limits, f"r{i}") for i in range(3)]
        refused = await outcome(admit(limits, "r3"))
        assert held[0] is not None
        limits_settle_later(held[0], price=Decimal(0), tokens=0, provider_tokens=0)
        await settled()
        freed = await outcome(admit(limits, "r4"))
        still = await outcome(admit(limits, "r5"))
        clock.advance(settings.GATEHOUSE_LIMITS_LEASE_SECONDS + 1)  # their processes died
        leased = await asyncio.gather(*(outcome(admit(limits, f"x{i}")) for i in range(4)))
        return [refused, freed, still, leased]

    refused, freed, still, leased = run(main)
    assert isinstance(refused, ApiError)
    assert refused.code == "concurrency_limit_exceeded"
    assert header(refused, "retry-after") == "1"
    assert isinstance(freed, Admission)
    assert isinstance(still, ApiError)
    assert sum(isinstance(r, Admission) for r in leased) == 3


def test_key_limits_apply_inside_the_tenants(clock: Clock) -> None:
    async def main() -> list[Any]:
        limits = LimitSet(tenant=Limits(rpm=10), key=Limits(rpm=2))
        mine = [await outcome(admit(limits, f"k{i}", key="key1")) for i in range(3)]
        other = await outcome(admit(LimitSet(tenant=Limits(rpm=10)), "o", key="key2"))
        return [mine, other]

    mine, other = run(main)
    assert [isinstance(r, Admission) for r in mine] == [True, True, False]
    assert "API key key1" in mine[2].message
    assert header(mine[1], "x-ratelimit-remaining-requests") == "0"  # the tighter scope is reported
    assert header(other, "x-ratelimit-remaining-requests") == "7"


@pytest.fixture
def ledger(django_db_blocker: Any, world: Any) -> Iterator[str]:
    """A real tenant schema with no records (the budget's seed is read from its ledger)."""
    with django_db_blocker.unblock():
        yield world.acme.schema_name


def test_budget_reservations_stop_concurrent_overshoot_and_alert_once(clock: Clock, ledger: str) -> None:
    async def main() -> list[Any]:
        limits = tenant(monthly_budget=Decimal("1.00"), soft_percent=80)
        burst = await asyncio.gather(
            *(outcome(admit(limits, f"b{i}", price="0.30", schema=ledger)) for i in range(10))
        )
        admitted = [r for r in burst if isinstance(r, Admission)]
        for admission in admitted:  # each really cost 0.28
            limits_settle_later(admission, price=Decimal("0.28"), tokens=50, provider_tokens=50)
        await settled()
        after = await outcome(admit(limits, "after", price="0.30", schema=ledger))
        small = await outcome(admit(limits, "small", price="0.10", schema=ledger))
        assert isinstance(small, Admission)
        limits_settle_later(small, price=Decimal("0.10"), tokens=10, provider_tokens=10)
        await settled()
        return [burst, after]

    burst, after = run(main)
    refused = [r for r in burst if isinstance(r, ApiError)]
    assert len(refused) == 7  # 3 x 0.30 fits in 1.00, a fourth does not: nothing overshoots
    assert {r.code for r in refused} == {"insufficient_quota"}
    assert refused[0].error_type == "insufficient_quota"
    assert "resets on 2026-12-01" in refused[0].message
    assert int(header(refused[0], "retry-after")) == 4 * 86400  # to the period's end
    assert isinstance(after, ApiError)  # 0.84 spent + 0.30 > 1.00
    budget = redis_client().hgetall("gh:rl:{t1}:budget:2026-11")
    assert budget["spent"] == str(94_000_000)
    assert budget["reserved"] == "0"
    alerts: Any = redis_client().xrange(service.ALERT_STREAM)
    assert len(alerts) == 1  # crossed 80 % at 0.84, not again at 0.94
    assert alerts[0][1] == {
        "tenant": "1",
        "key": "",
        "period": "2026-11",
        "kind": "spend",
        "used": "84000000",
        "cap": "100000000",
        "soft": "80",
    }


def test_budget_resets_at_the_start_of_the_month(clock: Clock, ledger: str) -> None:
    async def main() -> list[Any]:
        limits = tenant(monthly_token_cap=1000)
        first = await admit(limits, "a", worst_tokens=900, schema=ledger)
        assert first is not None
        limits_settle_later(first, price=Decimal(0), tokens=900, provider_tokens=900)
        await settled()
        refused = await outcome(admit(limits, "b", worst_tokens=200, schema=ledger))
        clock.set(NOV_1 + 30 * 86_400_000)  # 2026-12-01T00:00Z
        fresh = await outcome(admit(limits, "c", worst_tokens=200, schema=ledger))
        return [refused, fresh]

    refused, fresh = run(main)
    assert isinstance(refused, ApiError)
    assert refused.code == "insufficient_quota"
    assert "token cap" in refused.message
    assert isinstance(fresh, Admission)
    assert fresh.period == "2026-12"


def test_lost_counters_are_seeded_from_the_ledger(clock: Clock, ledger: str) -> None:
    """Redis lost the month's counters: the admission reads month-to-date usage from the tenant's records."""
    from django_tenants.utils import schema_context

    from gateway.limits.service import period_of
    from gateway.models import RequestRecord

    _, start, _ = period_of(NOW)
    with schema_context(ledger):
        RequestRecord.objects.create(request_id="seed-1", created_at=start, requested_model="m", price="0.95")
    try:
        refused = run(
            lambda: outcome(admit(tenant(monthly_budget=Decimal(1)), "x", price="0.10", schema=ledger))
        )
    finally:
        with schema_context(ledger):
            RequestRecord.objects.filter(request_id="seed-1").delete()
    assert isinstance(refused, ApiError)
    assert refused.code == "insufficient_quota"


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_redis_down_fails_open_or_closed_at_once(clock: Clock, mode: str) -> None:
    async def main() -> list[Any]:
        return list(await asyncio.gather(*(outcome(admit(tenant(rpm=1), f"r{i}")) for i in range(3))))

    with override_settings(REDIS_URL="redis://127.0.0.1:1/0", GATEHOUSE_LIMITS_REDIS_DOWN=mode):
        results = run(main)
    if mode == "open":
        assert results == [None, None, None]
    else:
        assert all(isinstance(r, ApiError) and r.status == 503 for r in results)
        assert results[0].code == "limits_unavailable"


def test_durations_are_written_as_openai_writes_them() -> None:
    assert [duration(ms) for ms in (20, 1000, 1500, 60_000, 90_500, 360_000)] == [
        "20ms",
        "1s",
        "1.5s",
        "1m0s",
        "1m30.5s",
        "6m0s",
    ]


def test_the_settle_rides_with_the_usage_event_and_is_retried_alone_after_noscript(
    clock: Clock, ledger: str
) -> None:
    """After a Redis restart the pipelined EVALSHA fails with NOSCRIPT: the event is stored all the same, and
    the settle runs again on its own; settling twice changes nothing the second time."""
    from gateway.metering import emit

    limits = tenant(concurrency=1, monthly_budget=Decimal(1))

    async def main() -> list[Any]:
        admission = await admit(limits, "p1", price="0.50", schema=ledger)
        assert admission is not None
        redis_client().script_flush()
        piggyback = service.limits_settle_piggyback(
            admission, price=Decimal("0.25"), tokens=7, provider_tokens=7
        )
        await emit._xadd(b'{"test": 1}', piggyback)
        await settled()
        limits_settle_later(admission, price=Decimal("0.25"), tokens=7, provider_tokens=7)  # a second time
        await settled()
        return [await outcome(admit(limits, "p2", price="0.50", schema=ledger))]

    (after,) = run(main)
    assert redis_client().xlen(emit.USAGE_STREAM) == 1
    assert isinstance(after, Admission)  # the slot was freed
    budget = redis_client().hgetall("gh:rl:{t1}:budget:2026-11")
    assert budget["spent"] == str(25_000_000)  # counted once
    assert budget["reserved"] == str(50_000_000)  # only p2's


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_an_unreadable_ledger_for_a_seed_is_handled_like_redis_down(
    clock: Clock, mode: str, django_db_blocker: Any
) -> None:
    """The month's counters are missing and the ledger cannot be read (here: no such schema): the request is
    admitted unchecked or refused with 503, never a 500."""
    with django_db_blocker.unblock(), override_settings(GATEHOUSE_LIMITS_REDIS_DOWN=mode):
        result = run(
            lambda: outcome(admit(tenant(monthly_budget=Decimal(1)), "x", schema="t_no_such_schema"))
        )
    if mode == "open":
        assert result is None
    else:
        assert isinstance(result, ApiError)
        assert result.status == 503
