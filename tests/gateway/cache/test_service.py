"""The cache's fault handling: a broken cache database sends requests upstream, and is not retried at once."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache import service, store
from gateway.cache.keys import cache_key
from gateway.cache.policy import CachePolicy

POLICY = CachePolicy(True, False, 0.92, 3600, 100, 1.0)


def test_a_failing_cache_database_means_no_lookup_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    async def broken(schema: str, exact_key: str) -> None:
        calls.append(exact_key)
        raise OSError("connection refused")

    monkeypatch.setattr(store, "entry_exact", broken)
    monkeypatch.setattr(service, "_down_until", 0.0)
    body = {"model": "sim/fast", "messages": [{"role": "user", "content": "Hello"}]}
    key = cache_key(body, scope_model="sim/fast", max_temperature=1.0, cache_control=None)
    assert key is not None

    first = asyncio.run(service.cache_lookup_or_skip("t_x", POLICY, key, 5))
    second = asyncio.run(service.cache_lookup_or_skip("t_x", POLICY, key, 5))

    assert (first, second) == (None, None)
    assert len(calls) == 1  # the second request did not wait for the same fault
    monkeypatch.setattr(service, "_down_until", 0.0)  # the backoff over: it tries again
    assert asyncio.run(service.cache_lookup_or_skip("t_x", POLICY, key, 5)) is None
    assert len(calls) == 2
