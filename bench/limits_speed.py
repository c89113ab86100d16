"""The limiter's cost per request: `limits_admit` (the hot path's one Redis round trip) and the settle after
the last byte, against the dev Redis (database 6, its own), sequentially and under concurrency.

Run from the repository root: `.venv/bin/python bench/limits_speed.py` (starts nothing: `make services-up`
first). Prints p50 / p95 / p99 in microseconds of admit and settle for a tenant scope alone and for a tenant
plus key scope with every kind of limit and a budget, and the throughput of admit+settle pairs at
concurrency 1 and 32 from one event loop (the Lua script's own cost, not the network's, dominates there).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
os.environ["REDIS_URL"] = f"redis://127.0.0.1:{os.environ.get('GATEHOUSE_REDIS_PORT', '6390')}/6"

import django

django.setup()

from config.redis import async_redis_client  # noqa: E402
from gateway.limits import service  # noqa: E402
from gateway.limits.policy import Limits, LimitSet  # noqa: E402

BIG = 10**9
TENANT = Limits(rpm=BIG, tpm=BIG, concurrency=100_000)
FULL = LimitSet(
    tenant=Limits(
        rpm=BIG, tpm=BIG, concurrency=100_000, monthly_budget=Decimal(10**8), monthly_token_cap=BIG
    ),
    key=Limits(rpm=BIG, tpm=BIG, concurrency=100_000, monthly_budget=Decimal(10**8), monthly_token_cap=BIG),
)


async def one(limits: LimitSet, admit_us: list[float], settle_us: list[float]) -> None:
    started = time.perf_counter()
    admission = await service.limits_admit(
        tenant_id=999_999,
        schema="t_bench",
        key_prefix="benchkey0001",
        limits=limits,
        request_id=uuid.uuid4().hex,
        tokens=120,
        worst_price=Decimal("0.0042"),
        worst_tokens=4216,
    )
    admitted = time.perf_counter()
    assert admission is not None
    # The settle on its own (on the request path it now rides in the usage event's XADD round trip).
    keys, args = service.settle_call(admission, Decimal("0.0011"), 180, 180)
    await service._settle(keys, args, admission.request_id)
    admit_us.append((admitted - started) * 1e6)
    settle_us.append((time.perf_counter() - admitted) * 1e6)


def quantiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100)
    return f"{statistics.median(samples):7.0f} {cuts[94]:7.0f} {cuts[98]:7.0f}"


async def seed_budgets() -> None:
    """A month's budget needs its seed once (from the ledger in production): give it directly."""
    client = async_redis_client()
    period = service.period_of(int(time.time() * 1000))[0]
    for scope in ("t999999", "kbenchkey0001"):
        await client.hset(
            f"gh:rl:{{{scope}}}:budget:{period}",
            mapping={"spent": 0, "tokens": 0, "reserved": 0, "rtokens": 0},
        )


async def main() -> None:
    client = async_redis_client()
    await client.flushdb()
    print("| scopes | admit p50 / p95 / p99 µs | settle p50 / p95 / p99 µs |")
    print("|---|---|---|")
    for name, limits in (
        ("tenant (RPM, TPM, concurrency)", LimitSet(tenant=TENANT)),
        ("tenant + key, budgets", FULL),
    ):
        if limits is FULL:
            await seed_budgets()
        admit_us: list[float] = []
        settle_us: list[float] = []
        for _ in range(200):
            await one(limits, [], [])
        for _ in range(3000):
            await one(limits, admit_us, settle_us)
        print(f"| {name} | {quantiles(admit_us)} | {quantiles(settle_us)} |")
    for concurrency in (1, 32):
        count = 6000
        started = time.perf_counter()

        async def worker(n: int) -> None:
            for _ in range(n):
                await one(FULL, [], [])

        await asyncio.gather(*(worker(count // concurrency) for _ in range(concurrency)))
        rate = count / (time.perf_counter() - started)
        print(f"admit+settle pairs, tenant + key with budgets, concurrency {concurrency}: {rate:,.0f}/s")
    await client.flushdb()


if __name__ == "__main__":
    asyncio.run(main())
