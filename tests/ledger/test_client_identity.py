"""Leak 1: a client-chosen x-request-id was the request's identity (the ledger's unique key, the limiter's id,
the settle marker). Now the gateway makes every id; the client's is a bounded label, echoed and stored."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import httpx
import pytest
import stripe

from config.redis import redis_client
from gateway.limits.service import from_units, scope_keys
from tests.gateway.api.conftest import Keys, Simulator, chat
from tests.ledger.conftest import Ledgerco, assert_reconciles, ledger, ledger_until

HELLO = {"model": "sim/fast", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 20}


def test_ten_requests_with_one_request_id_leave_ten_rows(
    gateway: str, ledgerco: Ledgerco, sim: Simulator, stripe_client: stripe.StripeClient
) -> None:
    answers = [
        chat(gateway, ledgerco.key, HELLO, **{"x-request-id": "same-id-every-time"}) for _ in range(10)
    ]

    assert [a.status_code for a in answers] == [200] * 10
    ours = {a.headers["x-request-id"] for a in answers}
    assert len(ours) == 10
    assert {a.headers["x-client-request-id"] for a in answers} == {"same-id-every-time"}
    rows = ledger_until(ledgerco, 10)
    assert {r.request_id for r in rows} == ours
    assert {r.client_request_id for r in rows} == {"same-id-every-time"}
    assert all(r.price > 0 for r in rows)
    assert_reconciles(ledgerco, stripe_client)


@pytest.mark.parametrize(
    ("sent", "label"),
    [
        ("x" * 300, "x" * 128),  # longer than the ledger's old varchar(64): was answered, never billed
        ("trace id\twith spaces and é", "traceidwithspacesand"),
        ("../../etc/passwd;DROP TABLE", "../../etc/passwd;DROPTABLE"),
    ],
)
def test_an_odd_or_long_request_id_is_a_bounded_label_and_the_request_is_billed(
    gateway: str, ledgerco: Ledgerco, sim: Simulator, sent: str, label: str
) -> None:
    answer = httpx.post(
        f"{gateway}/v1/chat/completions",
        json=HELLO,
        headers=[(b"authorization", f"Bearer {ledgerco.key}".encode()), (b"x-request-id", sent.encode())],
        timeout=30,
    )

    assert answer.status_code == 200, answer.text
    assert answer.headers["x-client-request-id"] == label
    (row,) = ledger_until(ledgerco, 1)
    assert (row.request_id, row.client_request_id) == (answer.headers["x-request-id"], label)
    assert row.price > 0


def test_an_id_another_tenant_used_first_neither_leaks_a_slot_nor_skips_the_budget(
    gateway: str,
    keys: Keys,
    ledgerco: Ledgerco,
    sim: Simulator,
    set_limits: Any,
    stripe_client: stripe.StripeClient,
) -> None:
    set_limits(concurrency=2, monthly_budget=Decimal(50))
    shared = {"x-request-id": "well-known-id"}
    assert chat(gateway, keys.globex, HELLO, **shared).status_code == 200  # globex uses it first

    answers = [chat(gateway, ledgerco.key, HELLO, **shared) for _ in range(6)]

    # The old settle marker was global: every reuse skipped the settle and leaked its slot, so the third
    # request of a key limited to 2 in flight was refused for the lease's 11 minutes.
    assert [a.status_code for a in answers] == [200] * 6
    rows = ledger_until(ledgerco, 6)
    assert len(rows) == 6
    client = redis_client()
    tenant_keys = scope_keys(ledgerco.tenant.pk, "", rows[0].created_at.strftime("%Y-%m"))
    assert client.zcard(tenant_keys[2]) == 0  # nothing in flight
    budget = cast("dict[str, str]", client.hgetall(tenant_keys[4]))
    assert from_units(budget["spent"]) == sum(r.price for r in rows)  # every request charged once
    assert from_units(budget["reserved"]) == 0
    assert_reconciles(ledgerco, stripe_client)


def test_the_client_label_is_searchable_and_never_crosses_tenants(
    gateway: str, keys: Keys, ledgerco: Ledgerco, sim: Simulator
) -> None:
    chat(gateway, ledgerco.key, HELLO, **{"x-client-request-id": "order-42"})
    chat(gateway, keys.globex, HELLO, **{"x-client-request-id": "order-42"})

    rows = [r for r in ledger_until(ledgerco, 1) if r.client_request_id == "order-42"]
    assert len(rows) == 1
    assert len(ledger(ledgerco)) == 1
