"""The PII policy through the real gateway: redaction before the provider (sim/echo shows what left),
restoration in JSON and streamed answers, blocking, and counts (never values) in the usage record."""

from __future__ import annotations

import time
from collections.abc import Iterator
from io import StringIO
from typing import Any

import httpx
import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pytest_django import DjangoDbBlocker

from gateway.keys import api_key_create
from gateway.pii.apply import StreamRestorer
from gateway.pii.manage import pii_settings_set
from gateway.pii.redact import Redactor
from tenants.models import Tenant
from tenants.services import tenant_create
from tests.conftest import World
from tests.gateway.api.conftest import chat, drain_usage

CARD, KEY, MAIL, SSN = "4111 1111 1111 1111", "sk-proj-" + "Q" * 30, "jane@example.com", "078-05-1120"
PROMPT = f"Charge card {CARD} with key {KEY}, then mail {MAIL}."


@pytest.fixture(scope="module")
def pii_tenant(world: World, django_db_blocker: DjangoDbBlocker) -> tuple[Tenant, str]:
    with django_db_blocker.unblock():
        tenant = tenant_create(
            slug="piia", name="PII A", owner_email="owner@piia.test", owner_password="correct-horse-battery"
        ).tenant
        return tenant, api_key_create(tenant=tenant, name="pii tests").raw_key


@pytest.fixture
def policy(pii_tenant: tuple[Tenant, str], django_db_blocker: DjangoDbBlocker) -> Iterator[Any]:
    def set_policy(actions: dict[str, str], restore: bool = True, scan_answers: bool = False) -> None:
        with django_db_blocker.unblock():
            pii_settings_set(
                tenant=pii_tenant[0], actions=actions, restore=restore, scan_answers=scan_answers
            )
        time.sleep(0.1)  # the gateway drops its cached principal on the pub/sub message

    yield set_policy
    set_policy({})


def echo(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": "sim/echo", "messages": [{"role": "user", "content": prompt}], **extra}


def test_by_default_cards_and_secrets_never_reach_the_provider(
    gateway: str, pii_tenant: tuple[Tenant, str], policy: Any, django_db_blocker: DjangoDbBlocker
) -> None:
    policy({}, restore=False)  # the deployment's default actions; no restoration, to see what left

    response = chat(gateway, pii_tenant[1], echo(PROMPT))

    sent = response.json()["choices"][0]["message"]["content"]  # sim/echo: the body it received
    assert "[CARD_1]" in sent
    assert "[SECRET_1]" in sent
    assert CARD not in sent
    assert KEY not in sent
    assert MAIL in sent  # e-mail is off by default
    with django_db_blocker.unblock():
        record = drain_usage(pii_tenant[0].schema_name)[response.headers["x-request-id"]]
    assert record.pii_counts == {"card": 1, "secret": 1}
    assert CARD not in str(record.__dict__)


def test_placeholders_in_the_answer_are_restored_for_the_tenant(
    gateway: str, pii_tenant: tuple[Tenant, str], policy: Any
) -> None:
    policy({"email": "redact"})

    answer = chat(gateway, pii_tenant[1], echo(PROMPT)).json()["choices"][0]["message"]["content"]

    assert CARD in answer
    assert MAIL in answer
    assert "[EMAIL_1]" not in answer


def test_a_streamed_answer_is_restored_even_when_a_placeholder_is_split_between_chunks(
    gateway: str, pii_tenant: tuple[Tenant, str], policy: Any
) -> None:
    policy({"email": "redact"})

    text = _streamed_text(gateway, pii_tenant[1], echo(PROMPT, stream=True))

    assert CARD in text
    assert MAIL in text
    assert "[" + "EMAIL" not in text


def test_a_blocked_category_refuses_the_request_naming_it_but_not_the_value(
    gateway: str, pii_tenant: tuple[Tenant, str], policy: Any, django_db_blocker: DjangoDbBlocker
) -> None:
    policy({"ssn": "block"})

    response = chat(gateway, pii_tenant[1], echo(f"My SSN is {SSN}, am I eligible?"))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "pii_blocked"
    assert "ssn" in error["message"]
    assert SSN not in response.text
    with django_db_blocker.unblock():
        record = drain_usage(pii_tenant[0].schema_name)[response.headers["x-request-id"]]
    assert (record.http_status, record.error_class) == (400, "pii_blocked")


def test_the_stream_restorer_holds_back_a_cut_placeholder() -> None:
    redactor = Redactor(frozenset({"email"}))
    redactor.redact(f"write to {MAIL}")
    restorer = StreamRestorer(redactor)

    def delta(text: str, finish: str | None = None) -> str:
        chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
        return str(restorer.chunk(chunk)["choices"][0]["delta"]["content"])

    assert delta("Mail [EMA") == "Mail "
    assert delta("IL_1] now, or [") == f"{MAIL} now, or "
    assert delta("x] done", "stop") == "[x] done"


def test_the_command_sets_the_policy_over_the_defaults(
    pii_tenant: tuple[Tenant, str], policy: Any, django_db_blocker: DjangoDbBlocker
) -> None:
    out = StringIO()

    with django_db_blocker.unblock():
        call_command("set_pii_policy", "--tenant", "piia", "email=redact", "ssn=block", stdout=out)
        with pytest.raises(CommandError, match="Unknown action"):
            call_command("set_pii_policy", "--tenant", "piia", "email=shred")

    assert "email=redact" in out.getvalue()
    assert "ssn=block" in out.getvalue()
    assert "card=redact" in out.getvalue()  # the default, kept


def _streamed_text(gateway: str, key: str, body: dict[str, Any]) -> str:
    with httpx.stream(
        "POST",
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    ) as response:
        chunks = [orjson.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


@pytest.mark.parametrize("stream", [False, True])
def test_scanned_answers_lose_personal_data_the_model_wrote_but_keep_the_tenants_restored_values(
    gateway: str,
    pii_tenant: tuple[Tenant, str],
    policy: Any,
    django_db_blocker: DjangoDbBlocker,
    stream: bool,
) -> None:
    """sim/echo answers with the body it received: an address in the (unscanned) `user` field stands for
    personal data the model produced itself; the prompt's own address comes back through restoration."""
    policy({"email": "redact", "card": "redact"}, scan_answers=True)
    body = echo(f"Mail {MAIL} please.", user="leak.me@elsewhere.org 4111-1111-1111-1111", stream=stream)

    if stream:
        text = _streamed_text(gateway, pii_tenant[1], body)
    else:
        response = chat(gateway, pii_tenant[1], body)
        text = response.json()["choices"][0]["message"]["content"]

    assert "leak.me@elsewhere.org" not in text
    assert "4111-1111-1111-1111" not in text
    assert "[EMAIL_REDACTED]" in text
    assert "[CARD_REDACTED]" in text
    assert MAIL in text  # the tenant's own value, restored after the scan
    if not stream:
        with django_db_blocker.unblock():
            record = drain_usage(pii_tenant[0].schema_name)[response.headers["x-request-id"]]
        assert record.pii_counts == {"email": 1, "answer_email": 1, "answer_card": 1}


def test_answers_are_not_scanned_unless_the_tenant_asks(
    gateway: str, pii_tenant: tuple[Tenant, str], policy: Any
) -> None:
    policy({"email": "redact"})
    body = echo("Hello", user="leak.me@elsewhere.org")

    text = chat(gateway, pii_tenant[1], body).json()["choices"][0]["message"]["content"]

    assert "leak.me@elsewhere.org" in text
