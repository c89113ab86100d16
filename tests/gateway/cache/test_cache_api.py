"""The response cache through the real gateway: exact and semantic hits, scope, guard, settings, metering,
streaming replay, tenant isolation and concurrent writers. The upstream is the provider simulator; a hit is
proved by the upstream being down when it is served."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from django_tenants.utils import schema_context
from pytest_django import DjangoDbBlocker

from gateway.cache import manage
from gateway.cache.manage import cache_evict
from gateway.models import CacheEntry
from tests.gateway.api.conftest import Simulator, chat, drain_usage
from tests.gateway.cache.conftest import CacheTenant, CacheTenants


@pytest.fixture(autouse=True)
def _committed(django_db_blocker: DjangoDbBlocker) -> Iterator[None]:
    """No test transaction: the gateway process must see the settings each test writes (committed at once)."""
    with django_db_blocker.unblock():
        yield


def ask(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": "sim/fast", "messages": [{"role": "user", "content": prompt}], **extra}


def unique(text: str) -> str:
    """The same question in every test would hit earlier tests' entries: make each test's prompts its own."""
    return f"{text} (case {uuid.uuid4().hex[:8]})"


def content(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def stored(tenant: CacheTenant, count: int, seconds: float = 10.0) -> list[CacheEntry]:
    """Wait for the gateway's background writes to leave `count` entries."""
    deadline = time.monotonic() + seconds
    while True:
        entries = tenant.entries()
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.02)


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def miss_then_store(
    gateway: str, tenant: CacheTenant, body: dict[str, Any], **headers: str
) -> httpx.Response:
    before = len(tenant.entries())
    response = chat(gateway, tenant.key, body, **headers)
    assert response.headers["x-gatehouse-cache"] == "miss"
    assert len(stored(tenant, before + 1)) == before + 1
    return response


def test_an_identical_request_is_answered_from_the_cache_while_the_upstream_is_down(
    gateway: str, caches: CacheTenants, sim: Simulator
) -> None:
    body = ask(unique("What is the capital of France?"))
    first = miss_then_store(gateway, caches.a, body)
    sim.set("sim/fast", outage=True)

    again = chat(gateway, caches.a.key, body)

    assert again.headers["x-gatehouse-cache"] == "hit-exact"
    assert again.headers["x-gatehouse-similarity"] == "1.0000"
    assert again.headers["x-gatehouse-model"] == "sim/fast"
    assert content(again) == content(first)
    assert again.json()["id"] != first.json()["id"]
    assert eventually(lambda: caches.a.entries()[0].hit_count == 1)


def test_a_paraphrase_is_a_semantic_hit_with_its_similarity(
    gateway: str, caches: CacheTenants, sim: Simulator
) -> None:
    tag = uuid.uuid4().hex[:6]
    first = miss_then_store(gateway, caches.a, ask(f"What is the capital city of France? {tag}"))
    sim.set("sim/fast", outage=True)

    again = chat(gateway, caches.a.key, ask(f"what's the capital city of france? {tag}"))

    assert again.headers["x-gatehouse-cache"] == "hit-semantic"
    assert 0.92 <= float(again.headers["x-gatehouse-similarity"]) < 1.0
    assert content(again) == content(first)


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        ("What is the capital of France?", "What is the capital of Germany?"),
        ("Please refund order 1234", "Please refund order 1243"),
        ("Can I import from Canada and sell in India?", "Can I import from India and sell in Canada?"),
        ("Is it safe to drink tap water in Mexico?", "Is it not safe to drink tap water in Mexico?"),
        ("What is the best way to learn Python?", "What is the worst way to learn Python?"),
    ],
    ids=["entity", "number", "direction", "negation", "antonym"],
)
def test_a_near_question_that_changes_the_answer_is_not_a_hit(
    cached: str, asked: str, gateway: str, caches: CacheTenants
) -> None:
    tag = uuid.uuid4().hex[:6]
    miss_then_store(gateway, caches.a, ask(f"{cached} {tag}"))
    caches.a.configure(threshold=0.5)  # the guard alone must say no

    response = chat(gateway, caches.a.key, ask(f"{asked} {tag}"))

    assert response.headers["x-gatehouse-cache"] == "miss"


@pytest.mark.parametrize(
    "change",
    [
        {"model": "sim/smart"},
        {"temperature": 0.3},
        {"max_tokens": 7},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]},
        {"system": "Answer in French."},
        {"earlier": "Hello"},
    ],
    ids=["model", "temperature", "max_tokens", "response_format", "tools", "system", "earlier-turns"],
)
def test_each_part_of_the_scope_splits_the_cache(
    change: dict[str, Any], gateway: str, caches: CacheTenants
) -> None:
    prompt = unique("Name three primary colours")
    miss_then_store(gateway, caches.a, ask(prompt))
    body = ask(prompt, **{k: v for k, v in change.items() if k not in ("system", "earlier")})
    if "system" in change:
        body["messages"].insert(0, {"role": "system", "content": change["system"]})
    if "earlier" in change:
        body["messages"][:0] = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"}]

    assert chat(gateway, caches.a.key, body).headers["x-gatehouse-cache"] == "miss"


def test_the_threshold_is_respected(gateway: str, caches: CacheTenants) -> None:
    tag = uuid.uuid4().hex[:6]
    miss_then_store(gateway, caches.a, ask(f"What is the capital city of France? {tag}"))
    caches.a.configure(threshold=0.999)

    assert (
        chat(gateway, caches.a.key, ask(f"what's the capital city of france? {tag}")).headers[
            "x-gatehouse-cache"
        ]
        == "miss"
    )


def test_semantic_matching_can_be_turned_off(gateway: str, caches: CacheTenants) -> None:
    tag = uuid.uuid4().hex[:6]
    miss_then_store(gateway, caches.a, ask(f"What is the capital city of France? {tag}"))
    caches.a.configure(semantic=False)

    assert (
        chat(gateway, caches.a.key, ask(f"what's the capital city of france? {tag}")).headers[
            "x-gatehouse-cache"
        ]
        == "miss"
    )
    assert (
        chat(gateway, caches.a.key, ask(f"What is the capital city of France? {tag}")).headers[
            "x-gatehouse-cache"
        ]
        == "hit-exact"
    )


def test_an_entry_expires_after_its_ttl(gateway: str, caches: CacheTenants) -> None:
    caches.a.configure(ttl_seconds=1)
    body = ask(unique("What is the tallest mountain?"))
    miss_then_store(gateway, caches.a, body)
    assert chat(gateway, caches.a.key, body).headers["x-gatehouse-cache"] == "hit-exact"

    time.sleep(1.2)

    assert chat(gateway, caches.a.key, body).headers["x-gatehouse-cache"] == "miss"


def test_a_disabled_cache_neither_answers_nor_stores(gateway: str, caches: CacheTenants) -> None:
    body = ask(unique("What is the tallest mountain?"))
    miss_then_store(gateway, caches.a, body)
    caches.a.configure(enabled=False)

    assert chat(gateway, caches.a.key, body).headers["x-gatehouse-cache"] == "miss"
    chat(gateway, caches.a.key, ask(unique("Something else")))
    time.sleep(0.3)
    assert len(caches.a.entries()) == 1


def test_no_store_is_neither_answered_nor_stored(gateway: str, caches: CacheTenants) -> None:
    body = ask(unique("What is the tallest mountain?"))
    miss_then_store(gateway, caches.a, body)

    assert (
        chat(gateway, caches.a.key, body, **{"cache-control": "no-store"}).headers["x-gatehouse-cache"]
        == "miss"
    )
    chat(gateway, caches.a.key, ask(unique("Other")), **{"cache-control": "no-store"})
    time.sleep(0.3)
    assert len(caches.a.entries()) == 1


def test_no_cache_skips_the_lookup_and_refreshes_the_entry(
    gateway: str, caches: CacheTenants, sim: Simulator
) -> None:
    body = ask(unique("Tell me a fact"), model="sim/echo")
    miss_then_store(gateway, caches.a, body)
    first = caches.a.entries()[0]

    refreshed = chat(gateway, caches.a.key, {**body, "user": "refresher"}, **{"cache-control": "no-cache"})

    assert refreshed.headers["x-gatehouse-cache"] == "miss"
    assert eventually(lambda: caches.a.entries()[0].created_at != first.created_at)
    assert "refresher" in str(caches.a.entries()[0].body)  # sim/echo answered with the new request
    sim.set("sim/echo", outage=True)
    assert "refresher" in content(chat(gateway, caches.a.key, body))


@pytest.mark.parametrize(
    "extra",
    [{"n": 2}, {"temperature": 1.5}],
    ids=["n>1", "above-max-temperature"],
)
def test_requests_that_must_not_be_cached_are_not(
    extra: dict[str, Any], gateway: str, caches: CacheTenants
) -> None:
    body = ask(unique("Write a haiku"), **extra)
    assert chat(gateway, caches.a.key, body).status_code == 200
    assert chat(gateway, caches.a.key, body).headers["x-gatehouse-cache"] == "miss"
    time.sleep(0.3)
    assert caches.a.entries() == []


def _stream(gateway: str, key: str, body: dict[str, Any]) -> tuple[httpx.Headers, list[dict[str, Any]]]:
    headers = {"authorization": f"Bearer {key}"}
    with httpx.stream("POST", f"{gateway}/v1/chat/completions", json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200
        lines = list(r.iter_lines())
    assert lines[-2:] == ["data: [DONE]", ""] or lines[-1] == "data: [DONE]"
    return r.headers, [orjson.loads(line[6:]) for line in lines if line.startswith("data: {")]


def _streamed_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_a_streamed_answer_replays_as_the_same_stream_and_as_json(
    gateway: str, caches: CacheTenants, sim: Simulator
) -> None:
    body = ask(unique("Explain rainbows"), stream=True, stream_options={"include_usage": True})
    headers, original = _stream(gateway, caches.a.key, body)
    assert headers["x-gatehouse-cache"] == "miss"
    stored(caches.a, 1)
    sim.set("sim/fast", outage=True)

    headers, replayed = _stream(gateway, caches.a.key, body)
    as_json = chat(gateway, caches.a.key, {**body, "stream": False, "stream_options": None})

    assert headers["x-gatehouse-cache"] == "hit-exact"
    assert headers["content-type"].startswith("text/event-stream")
    assert _streamed_text(replayed) == _streamed_text(original) == content(as_json)
    assert [c["choices"] for c in replayed] == [c["choices"] for c in original]
    assert replayed[-1]["usage"] == original[-1]["usage"]
    assert as_json.json()["usage"] == original[-1]["usage"]


def test_a_json_answer_replays_as_a_stream(gateway: str, caches: CacheTenants, sim: Simulator) -> None:
    body = ask(unique("Explain tides"))
    first = miss_then_store(gateway, caches.a, body)
    sim.set("sim/fast", outage=True)

    headers, replayed = _stream(gateway, caches.a.key, {**body, "stream": True})

    assert headers["x-gatehouse-cache"] == "hit-exact"
    assert _streamed_text(replayed) == content(first)
    assert replayed[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in replayed)


def test_one_tenants_entry_never_answers_another_tenant(gateway: str, caches: CacheTenants) -> None:
    body = ask(unique("What is our internal refund policy?"))
    miss_then_store(gateway, caches.a, body)
    assert chat(gateway, caches.a.key, body).headers["x-gatehouse-cache"] == "hit-exact"

    other = chat(gateway, caches.b.key, body)

    assert other.headers["x-gatehouse-cache"] == "miss"
    assert len(stored(caches.b, 1)) == 1  # B's own answer, in B's schema
    assert len(caches.a.entries()) == 1


def test_concurrent_identical_requests_leave_one_whole_entry(gateway: str, caches: CacheTenants) -> None:
    body = ask(unique("List the planets"))

    async def burst() -> list[httpx.Response]:
        headers = {"authorization": f"Bearer {caches.a.key}"}
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(f"{gateway}/v1/chat/completions", json=body, headers=headers)
                    for _ in range(20)
                )
            )

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} == {200}
    time.sleep(0.5)
    entries = caches.a.entries()
    assert len(entries) == 1
    hit = chat(gateway, caches.a.key, body)
    assert hit.headers["x-gatehouse-cache"] == "hit-exact"
    assert content(hit) == content(responses[0])
    assert entries[0].body["choices"][0]["message"]["content"] == content(hit)


def test_unrepresentable_text_is_matched_exactly_only(gateway: str, caches: CacheTenants) -> None:
    tag = uuid.uuid4().hex[:6]
    first = ask(f"法国的首都是哪里? {tag}")
    miss_then_store(gateway, caches.a, first)
    caches.a.configure(threshold=0.5)

    assert chat(gateway, caches.a.key, ask(f"德国的首都是哪里? {tag}")).headers["x-gatehouse-cache"] == "miss"
    assert chat(gateway, caches.a.key, first).headers["x-gatehouse-cache"] == "hit-exact"
    assert caches.a.entries()[0].embedding is None


def test_a_hit_is_metered_at_the_plans_hit_price_with_the_saving(gateway: str, caches: CacheTenants) -> None:
    body = ask(unique("Summarise the water cycle"))
    miss = miss_then_store(gateway, caches.a, body)
    hit = chat(gateway, caches.a.key, body)

    records = drain_usage(caches.a.tenant.schema_name)
    missed, served = records[miss.headers["x-request-id"]], records[hit.headers["x-request-id"]]
    assert (missed.cache_status, served.cache_status) == ("miss", "hit-exact")
    assert served.provider_cost == Decimal(0)
    assert served.cache_saving == missed.provider_cost > 0
    hit_percent = caches.a.tenant.plan.cache_hit_percent
    assert served.price == (missed.price * hit_percent / 100).quantize(Decimal("0.00000001"))
    assert (served.input_tokens, served.output_tokens) == (missed.input_tokens, missed.output_tokens)
    assert served.cache_similarity == 1.0
    assert served.attempts == []
    assert served.served_model == "sim/fast"


def test_eviction_drops_expired_entries_then_the_least_hit_beyond_the_maximum(
    gateway: str, caches: CacheTenants, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manage, "VACUUM_AFTER", 2)  # the second eviction also vacuums the table
    bodies = [ask(unique(f"Question number {n}")) for n in range(3)]
    for body in bodies:
        miss_then_store(gateway, caches.a, body)
    chat(gateway, caches.a.key, bodies[0])  # hits: the popular entries
    chat(gateway, caches.a.key, bodies[2])
    assert eventually(lambda: sum(entry.hit_count for entry in caches.a.entries()) == 2)
    caches.a.configure(max_entries=2)

    assert cache_evict(tenant=caches.a.tenant) == 1

    kept = {entry.prompt for entry in caches.a.entries()}
    assert kept == {bodies[0]["messages"][0]["content"], bodies[2]["messages"][0]["content"]}
    with schema_context(caches.a.tenant.schema_name):
        CacheEntry.objects.update(expires_at=CacheEntry.objects.first().created_at)  # type: ignore[union-attr]
    assert cache_evict(tenant=caches.a.tenant) == 2
    assert caches.a.entries() == []


def test_hits_and_their_saving_show_in_the_metrics(gateway: str, caches: CacheTenants) -> None:
    body = ask(unique("Summarise photosynthesis"))
    miss_then_store(gateway, caches.a, body)
    assert chat(gateway, caches.a.key, body).headers["x-gatehouse-cache"] == "hit-exact"

    metrics = httpx.get(f"{gateway}/metrics", timeout=10).text

    hits = [line for line in metrics.splitlines() if line.startswith("gatehouse_requests_total{")]
    assert any('cache="hit-exact"' in line and 'model="sim/fast"' in line for line in hits)
    saving = [line for line in metrics.splitlines() if line.startswith("gatehouse_cache_saving_usd_total{")]
    assert saving
    assert float(saving[0].rsplit(" ", 1)[1]) > 0
