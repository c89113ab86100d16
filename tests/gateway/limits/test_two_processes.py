"""Limits are exact across web processes: 200 concurrent requests, two gateways, one Redis (frozen clock)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import gateway_env
from tests.gateway.limits.conftest import HELLO, Org
from tests.live import free_port, start_web, stop

NOW_MS = 1_795_000_000_000


@pytest.fixture
def two_gateways(simulator_url: str, artifacts_dir: Path) -> Iterator[tuple[list[str], Path]]:
    clock = artifacts_dir / "limits-clock"
    clock.write_text(str(NOW_MS))
    # A burst of 200 on two cores can keep an event loop busy past the limiter's 0.25 s Redis timeout, and
    # then it fails open (tested in test_limits_api): this test is about exactness, so it waits longer.
    env = {
        **gateway_env(simulator_url),
        "GATEHOUSE_TEST_CLOCK_FILE": str(clock),
        "GATEHOUSE_LIMITS_TIMEOUT": "5",
    }
    ports = [free_port(), free_port()]
    procs = [start_web(port, artifacts_dir / f"web-limits-{n}.log", **env) for n, port in enumerate(ports)]
    try:
        yield [f"http://localhost:{port}" for port in ports], clock
    finally:
        for proc in procs:
            stop(proc)
        clock.unlink()


def burst(urls: list[str], key: str, count: int) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            headers = {"authorization": f"Bearer {key}"}
            return await asyncio.gather(
                *(
                    client.post(f"{urls[n % len(urls)]}/v1/chat/completions", json=HELLO, headers=headers)
                    for n in range(count)
                )
            )

    return asyncio.run(main())


def test_two_processes_admit_exactly_the_limit_and_refill_over_time(
    two_gateways: tuple[list[str], Path], org: Org, limits: Any
) -> None:
    urls, clock = two_gateways
    limits(concurrency=500)  # the plan's 50 in flight would refuse most of the burst first
    limits(org.prefix, rpm=100)
    # Warm both processes' chat path (the key's principal, the Redis pool and script, the tokenizer) with
    # the other key, so that neither starts the burst late.
    auth = {"authorization": f"Bearer {org.other_key}"}
    warm = [httpx.post(f"{url}/v1/chat/completions", json=HELLO, headers=auth) for url in urls]
    warm += [httpx.get(f"{url}/v1/models", headers={"authorization": f"Bearer {org.key}"}) for url in urls]
    assert [w.status_code for w in warm] == [200, 200, 200, 200]

    first = burst(urls, org.key, 200)
    clock.write_text(str(NOW_MS + 30_000))  # half a minute: 50 requests' worth
    second = burst(urls, org.key, 60)

    admitted = [r for r in first if r.status_code == 200]
    refused = [r for r in first if r.status_code == 429]
    assert (len(admitted), len(refused)) == (100, 100)  # none over the limit, none refused below it
    assert {r.url.port for r in admitted} == {httpx.URL(u).port for u in urls}  # both processes admitted
    # Every admission saw a distinct count of what was left: the script ran atomically, one at a time.
    assert sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in admitted) == list(range(100))
    assert {r.json()["error"]["code"] for r in refused} == {"rate_limit_exceeded"}
    assert {r.headers["retry-after"] for r in refused} == {"1"}  # 0.6 s to the next request
    assert {r.headers["x-ratelimit-remaining-requests"] for r in refused} == {"0"}
    assert sum(r.status_code == 200 for r in second) == 50
    assert sum(r.status_code == 429 for r in second) == 10
