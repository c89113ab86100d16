"""Limits and budgets through the real gateway: headers, 429s, budgets stopping requests before any provider
call, alerts, the overflow policy, and Redis outages (gateway.limits)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from django.core import mail
from django.core.management import call_command
from pytest_django import DjangoDbBlocker

from billing.models import BudgetAlert
from gateway.limits.alerts import budget_alerts_drain
from tenants.models import Tenant
from tests.conftest import gateway_env
from tests.gateway.api.conftest import Simulator, chat, drain_usage
from tests.gateway.limits.conftest import HELLO, Org
from tests.live import free_port, start_web, stop


def test_every_answer_carries_openai_rate_limit_headers(gateway: str, org: Org, limits: Any) -> None:
    stream = {**HELLO, "stream": True}
    answers = [chat(gateway, org.key, HELLO), chat(gateway, org.key, stream)]
    limits(rpm=2)  # a new limit starts full
    more = [chat(gateway, org.key, HELLO).status_code for _ in range(2)]
    refused = chat(gateway, org.key, HELLO)

    assert [a.status_code for a in answers] == [200, 200]
    assert more == [200, 200]
    for answer in answers:
        assert answer.headers["x-ratelimit-limit-requests"] == "600"  # the starter plan's default
        assert answer.headers["x-ratelimit-limit-tokens"] == "400000"
        assert int(answer.headers["x-ratelimit-remaining-requests"]) < 600
        assert answer.headers["x-ratelimit-reset-requests"].endswith(("ms", "s"))
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.json()["error"]["type"] == "requests"
    assert refused.headers["x-ratelimit-limit-requests"] == "2"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert int(refused.headers["retry-after"]) >= 1
    assert "x-ratelimit-remaining-tokens" in refused.headers


def test_a_change_of_limits_applies_to_the_next_request(gateway: str, org: Org, limits: Any) -> None:
    limits(rpm=1)
    assert chat(gateway, org.key, HELLO).status_code == 200
    assert chat(gateway, org.key, HELLO).status_code == 429
    limits(rpm=None)  # back to the plan's 600 a minute: 10 a second
    time.sleep(0.2)
    assert chat(gateway, org.key, HELLO).status_code == 200


def test_set_limits_command_limits_one_key_only(
    gateway: str, org: Org, limits: Any, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        call_command("set_limits", "--tenant", "limitco", "--key", org.prefix, "--rpm", "1")
    time.sleep(0.15)
    first, second = chat(gateway, org.key, HELLO), chat(gateway, org.key, HELLO)
    others = chat(gateway, org.other_key, HELLO)

    assert (first.status_code, second.status_code, others.status_code) == (200, 429, 200)
    assert f"API key {org.prefix}" in second.json()["error"]["message"]
    assert first.headers["x-ratelimit-limit-requests"] == "1"  # the tighter of key and tenant
    assert others.headers["x-ratelimit-limit-requests"] == "600"


def test_requests_in_flight_are_capped(gateway: str, org: Org, limits: Any, sim: Simulator) -> None:
    sim.set("sim/fast", ttft_ms=400)
    limits(org.prefix, concurrency=2)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            headers = {"authorization": f"Bearer {org.key}"}
            return await asyncio.gather(
                *(
                    client.post(f"{gateway}/v1/chat/completions", json=HELLO, headers=headers)
                    for _ in range(6)
                )
            )

    statuses = sorted(r.status_code for r in asyncio.run(burst()))
    after = chat(gateway, org.key, HELLO)  # the slots were freed when those ended

    assert statuses == [200, 200, 429, 429, 429, 429]
    assert after.status_code == 200


def test_the_hard_cap_refuses_before_any_provider_is_called(
    gateway: str, org: Org, limits: Any, sim: Simulator, django_db_blocker: DjangoDbBlocker
) -> None:
    limits(org.prefix, monthly_budget=Decimal("0.00"))
    sim.set("sim/fast", outage=True)  # were the provider called, the answer would be an upstream error

    refused = chat(gateway, org.key, HELLO)

    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    assert "resets on" in error["message"]
    with django_db_blocker.unblock():
        record = drain_usage(org.tenant.schema_name)[refused.headers["x-request-id"]]
    assert record.http_status == 429
    assert record.attempts == []  # no upstream attempt at all
    assert record.price == 0


def test_a_token_budget_alerts_once_then_stops(
    gateway: str, org: Org, limits: Any, django_db_blocker: DjangoDbBlocker
) -> None:
    limits(org.prefix, monthly_token_cap=400)
    statuses = []
    for _ in range(30):
        answer = chat(gateway, org.key, HELLO)
        statuses.append(answer.status_code)
        if answer.status_code != 200:
            break
        time.sleep(0.05)  # settling runs just after the last byte
    time.sleep(0.2)
    with django_db_blocker.unblock():
        mail.outbox.clear()
        recorded = budget_alerts_drain() + budget_alerts_drain()  # the second finds nothing new
        alerts = list(BudgetAlert.objects.filter(tenant=org.tenant, api_key_prefix=org.prefix))
        records = drain_usage(org.tenant.schema_name)
        used = sum(
            r.input_tokens + r.output_tokens for r in records.values() if r.api_key_prefix == org.prefix
        )
        BudgetAlert.objects.filter(tenant=org.tenant).delete()

    assert statuses[-1] == 429
    assert set(statuses[:-1]) == {200}
    assert answer.json()["error"]["code"] == "insufficient_quota"
    assert recorded == 1
    assert len(alerts) == 1
    assert alerts[0].kind == "tokens"
    assert alerts[0].cap == 400
    assert alerts[0].used >= 320
    assert used <= 400  # never past the cap
    assert len(mail.outbox) == 1  # the e-mail hook, to the tenant's owner
    assert mail.outbox[0].to == ["owner@limitco.test"]


def test_a_suspended_tenant_gets_403(gateway: str, org: Org, django_db_blocker: DjangoDbBlocker) -> None:
    from tenants.services import tenant_reactivate, tenant_suspend

    with django_db_blocker.unblock():
        tenant_suspend(tenant=org.tenant, reason="unpaid")
    time.sleep(0.15)
    try:
        answer = chat(gateway, org.key, HELLO)
    finally:
        with django_db_blocker.unblock():
            tenant_reactivate(tenant=Tenant.objects.get(pk=org.tenant.pk))
        time.sleep(0.15)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "tenant_suspended"


def _conversation(turns: int) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are terse."}]
    for n in range(turns):
        messages += [
            {"role": "user", "content": f"Question number {n}: what is the colour of the sky at dusk?"},
            {"role": "assistant", "content": f"Answer number {n}: mostly orange and red."},
        ]
    return [*messages, {"role": "user", "content": "And at dawn?"}]


def test_an_overlong_conversation_is_refused_or_truncated_by_policy(
    gateway: str, org: Org, limits: Any
) -> None:
    messages = _conversation(6)
    body = {"model": "sim/tiny-echo", "messages": messages, "max_tokens": 10}
    refused = chat(gateway, org.key, body)
    limits(context_overflow="truncate")
    truncated = chat(gateway, org.key, body)

    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "context_length_exceeded"
    assert truncated.status_code == 200, truncated.text
    dropped = int(truncated.headers["x-gatehouse-truncated"])
    sent = orjson.loads(truncated.json()["choices"][0]["message"]["content"])["messages"]
    assert len(sent) == len(messages) - dropped
    assert sent[0] == messages[0]  # the system prompt stays
    assert sent[-1] == messages[-1]  # and the question
    assert sent[1]["role"] == "user"  # whole turns go: no orphan answer first
    assert sent[1:-1] == messages[1 + dropped : -1]  # the newest turns are kept


@pytest.mark.parametrize(("mode", "status"), [("open", 200), ("closed", 503)])
def test_without_redis_the_gateway_fails_open_or_closed_without_hanging(
    org: Org, simulator_url: str, artifacts_dir: Path, mode: str, status: int
) -> None:
    port = free_port()
    proc = start_web(
        port,
        artifacts_dir / f"web-no-redis-{mode}.log",
        **gateway_env(simulator_url),
        GATEHOUSE_TEST_REDIS_URL="redis://127.0.0.1:1/0",
        GATEHOUSE_LIMITS_REDIS_DOWN=mode,
        GATEHOUSE_DATA_DIR=str(artifacts_dir / f"no-redis-{mode}"),  # its usage spool
    )
    try:
        started = time.monotonic()
        answers = [chat(f"http://localhost:{port}", org.key, HELLO) for _ in range(3)]
        took = time.monotonic() - started
    finally:
        stop(proc)
    assert [a.status_code for a in answers] == [status] * 3
    assert took < 20  # no hang (a generous bound: this is not a latency test)
    if mode == "closed":
        assert answers[0].json()["error"]["code"] == "limits_unavailable"
        assert answers[0].headers["retry-after"] == "1"
    else:
        assert "x-ratelimit-limit-requests" not in answers[0].headers


def test_repeated_refusals_are_answered_in_process_without_a_ledger_row(
    gateway: str, org: Org, limits: Any, django_db_blocker: DjangoDbBlocker
) -> None:
    limits(org.prefix, rpm=1)
    answers = [chat(gateway, org.key, HELLO) for _ in range(4)]
    time.sleep(0.2)
    with django_db_blocker.unblock():
        records = drain_usage(org.tenant.schema_name)
    metrics = httpx.get(f"{gateway}/metrics").text

    assert [a.status_code for a in answers] == [200, 429, 429, 429]
    ids = [a.headers["x-request-id"] for a in answers]
    assert records[ids[0]].http_status == 200
    assert records[ids[1]].http_status == 429  # the refusal Redis decided is recorded
    assert ids[2] not in records  # the ones this process then answered alone are counted, not recorded
    assert ids[3] not in records
    for refused in answers[1:]:
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert refused.headers["x-ratelimit-limit-requests"] == "1"
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        assert 50 <= int(refused.headers["retry-after"]) <= 60
    assert "gatehouse_requests_refused_locally_total" in metrics
