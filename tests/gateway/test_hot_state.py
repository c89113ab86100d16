"""The hot path's key cache: one load for many concurrent cold requests, stale entries served while one
background reload refreshes them, and a key found revoked by that reload refused from then on."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest

from gateway import state
from gateway.api.errors import ApiError
from gateway.cache.policy import CachePolicy
from gateway.keys import ApiKeyError
from gateway.pricing import PlanPricing
from gateway.state import HotState, Principal

KEY = "gate_AAAAAAAAAAAA_" + "B" * 40


def principal(slug: str) -> Principal:
    return Principal(
        tenant_id=1,
        tenant_slug=slug,
        schema=f"t_{slug}",
        tenant_active=True,
        key_prefix="AAAAAAAAAAAA",
        allowed_models=(),
        expires_at=None,
        pricing=PlanPricing(),
        chains={},
        cache=CachePolicy(False, False, 0.9, 3600, 100, 1.0),
    )


class FakeLoader:
    def __init__(self, *results: Principal | Exception) -> None:
        self.results = list(results)
        self.calls = 0

    def __call__(self, raw_key: str) -> Principal:
        self.calls += 1
        time.sleep(0.05)  # a database round trip, in the worker thread
        result = self.results[min(self.calls, len(self.results)) - 1]
        if isinstance(result, Exception):
            raise result
        return result


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


@pytest.fixture
def hot(monkeypatch: pytest.MonkeyPatch, settings: Any) -> HotState:
    settings.GATEHOUSE_KEY_CACHE_SECONDS = 0.2
    monkeypatch.setattr(HotState, "ensure_listener", lambda self: None)
    return HotState()


def test_concurrent_cold_requests_share_one_load(hot: HotState, monkeypatch: pytest.MonkeyPatch) -> None:
    loader = FakeLoader(principal("acme"))
    monkeypatch.setattr(state, "_load_principal", loader)

    async def many() -> list[Principal]:
        return list(await asyncio.gather(*(hot.principal(KEY) for _ in range(25))))

    found = run(many())

    assert loader.calls == 1
    assert {p.tenant_slug for p in found} == {"acme"}


def test_a_stale_entry_is_served_while_one_reload_refreshes_it(
    hot: HotState, monkeypatch: pytest.MonkeyPatch
) -> None:
    loader = FakeLoader(principal("old"), principal("new"))
    monkeypatch.setattr(state, "_load_principal", loader)

    async def scenario() -> tuple[str, str, str]:
        first = await hot.principal(KEY)
        await asyncio.sleep(0.25)  # past the TTL
        stale = await asyncio.gather(*(hot.principal(KEY) for _ in range(10)))
        await asyncio.gather(*hot.loading.values())
        fresh = await hot.principal(KEY)
        return first.tenant_slug, stale[0].tenant_slug, fresh.tenant_slug

    assert run(scenario()) == ("old", "old", "new")
    assert loader.calls == 2  # ten stale hits, one reload


def test_a_key_found_revoked_by_a_reload_is_refused(hot: HotState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "_load_principal", FakeLoader(principal("acme"), ApiKeyError("revoked")))

    async def scenario() -> None:
        await hot.principal(KEY)
        await asyncio.sleep(0.25)
        await hot.principal(KEY)  # stale, triggers the reload
        await asyncio.gather(*hot.loading.values())
        await hot.principal(KEY)

    with pytest.raises(ApiError) as refused:
        run(scenario())
    assert refused.value.status == 401


def test_a_database_failure_on_a_cold_key_is_a_503(hot: HotState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "_load_principal", FakeLoader(ConnectionError("database down")))

    with pytest.raises(ApiError) as unavailable:
        run(hot.principal(KEY))
    assert unavailable.value.status == 503


def test_a_failed_reload_keeps_serving_and_backs_off(hot: HotState, monkeypatch: pytest.MonkeyPatch) -> None:
    loader = FakeLoader(principal("acme"), ConnectionError("database down"))
    monkeypatch.setattr(state, "_load_principal", loader)

    async def scenario() -> list[str]:
        await hot.principal(KEY)
        await asyncio.sleep(0.25)
        served = []
        for _ in range(5):
            served.append((await hot.principal(KEY)).tenant_slug)
            await asyncio.gather(*hot.loading.values())
        return served

    assert run(scenario()) == ["acme"] * 5
    assert loader.calls == 2  # one failed reload, then a pause before the next


def test_a_plan_edit_drops_the_principals_of_that_plans_tenants_only(hot: HotState) -> None:
    on_plan_7, on_plan_8 = replace(principal("seven"), plan_id=7), replace(principal("eight"), plan_id=8)
    hot.principals = {"a": (on_plan_7, 0.0), "b": (on_plan_8, 0.0)}

    hot.drop("plan:7")

    assert list(hot.principals) == ["b"]
