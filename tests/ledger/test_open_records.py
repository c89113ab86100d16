"""Open records, checkpoints and the reaper, piece by piece: what the crash test relies on."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from typing import cast

import orjson
from django_tenants.utils import schema_context

from config.redis import redis_client
from gateway.limits import service
from gateway.limits.policy import Limits, LimitSet
from gateway.limits.service import Admission, limits_admit, open_record, settle_call
from gateway.metering.dead_letters import DEAD_STREAM
from gateway.metering.emit import USAGE_STREAM
from gateway.metering.events import UsageEvent, usage_event_parse
from gateway.metering.liveness import HEARTBEAT_PREFIX, OPEN_PREFIX, PROCESSES
from gateway.metering.opened import checkpoint_write
from gateway.metering.reaper import reap_dead
from gateway.metering.store import usage_store
from gateway.models import RequestRecord
from tests.gateway.api.conftest import Simulator, chat
from tests.gateway.metering_crash import make_event
from tests.ledger.conftest import Ledgerco, ledger_until

GHOST = "ghost-host:4242:deadbeef"
OPEN = f"{OPEN_PREFIX}{GHOST}"
LIMITS = LimitSet(tenant=Limits(concurrency=5, monthly_budget=Decimal(10), monthly_token_cap=100_000))


def _event(org: Ledgerco, request_id: str, **values: object) -> UsageEvent:
    return make_event(request_id, schema=org.schema, tenant_id=org.tenant.pk, recovered=True, **values)


def _admit(org: Ledgerco, request_id: str) -> Admission:
    async def admit() -> Admission:
        admission = await limits_admit(
            tenant_id=org.tenant.pk,
            schema=org.schema,
            key_prefix=org.prefix,
            limits=LIMITS,
            request_id=request_id,
            tokens=10,
            worst_price=Decimal("0.5"),
            worst_tokens=5_000,
            open_key=OPEN,
            open_event=_event(org, request_id, price=Decimal(0), output_tokens=0),
        )
        assert admission is not None
        return admission

    return asyncio.run(admit())


def _budget(org: Ledgerco, admission: Admission) -> dict[str, str]:
    return cast("dict[str, str]", redis_client().hgetall(admission.scopes[0].keys[4]))


def test_the_admission_writes_the_open_record_and_the_settle_removes_it(ledgerco: Ledgerco) -> None:
    admission = _admit(ledgerco, "req_open_1")
    client = redis_client()
    assert client.hexists(OPEN, "req_open_1")
    assert usage_event_parse(_event_of(client.hget(OPEN, "req_open_1"))).recovered

    keys, args = settle_call(admission, price=Decimal("0.1"), tokens=50, provider_tokens=50)
    asyncio.run(service._settle(keys, args, admission.request_id))

    assert not client.hexists(OPEN, "req_open_1")
    # A checkpoint sent just before the last byte and arriving after the settle must not bring it back:
    # the reaper would bill the request a second time once its process is gone.
    record = open_record(admission, _event(ledgerco, "req_open_1"))
    asyncio.run(checkpoint_write(OPEN, ledgerco.tenant.pk, "req_open_1", record))
    assert not client.hexists(OPEN, "req_open_1")


def test_the_reaper_settles_a_dead_process_and_leaves_a_live_one_alone(ledgerco: Ledgerco) -> None:
    client = redis_client()
    admission = _admit(ledgerco, "req_open_2")
    streamed = _event(ledgerco, "req_open_2", price=Decimal("0.25"), output_tokens=40, input_tokens=10)
    asyncio.run(checkpoint_write(OPEN, ledgerco.tenant.pk, "req_open_2", open_record(admission, streamed)))
    client.sadd(PROCESSES, GHOST)
    client.set(f"{HEARTBEAT_PREFIX}{GHOST}", "1", px=60_000)
    assert _budget(ledgerco, admission)["reserved"] == "50000000"  # 0.5 in units of 1e-8

    assert reap_dead(client) == 0  # its heartbeat is fresh: alive
    client.delete(f"{HEARTBEAT_PREFIX}{GHOST}")  # now it is gone
    assert reap_dead(client) == 1
    assert reap_dead(client) == 0  # nothing left, and the process has left the registry

    assert not client.exists(OPEN)
    assert not client.sismember(PROCESSES, GHOST)
    assert client.zcard(admission.scopes[0].keys[2]) == 0  # its slot is free
    budget = _budget(ledgerco, admission)
    assert (budget["reserved"], budget["spent"], budget["tokens"]) == ("0", "25000000", "50")
    (row,) = ledger_until(ledgerco, 1)
    assert (row.request_id, row.recovered, row.output_tokens, row.price) == (
        "req_open_2",
        True,
        40,
        Decimal("0.25"),
    )


def test_an_unreadable_open_record_becomes_a_dead_letter_not_a_loop(ledgerco: Ledgerco) -> None:
    client = redis_client()
    client.hset(OPEN, "req_garbled", "{half a record")
    client.sadd(PROCESSES, GHOST)

    assert reap_dead(client) == 0

    assert not client.exists(OPEN)
    assert client.xlen(DEAD_STREAM) == 1
    assert client.xlen(USAGE_STREAM) == 0


def test_a_requests_own_event_replaces_its_recovered_record_never_the_reverse(ledgerco: Ledgerco) -> None:
    recovered = _event(ledgerco, "req_thought_dead", output_tokens=12, price=Decimal("0.01"))
    final = replace(recovered, recovered=False, output_tokens=345, price=Decimal("0.2"))

    assert usage_store([recovered]) == 1
    assert usage_store([final]) == 0  # not a new request: a replacement
    assert usage_store([recovered]) == 0  # a late copy of the recovered event changes nothing
    assert usage_store([final, recovered]) == 0

    with schema_context(ledgerco.schema):
        row = RequestRecord.objects.get(request_id="req_thought_dead")
    assert (row.recovered, row.output_tokens, row.price) == (False, 345, Decimal("0.2"))


def test_answered_requests_leave_no_open_record(gateway: str, ledgerco: Ledgerco, sim: Simulator) -> None:
    hello = {"model": "sim/fast", "messages": [{"role": "user", "content": "Say hello"}]}
    statuses = [
        chat(gateway, ledgerco.key, hello).status_code,
        chat(gateway, ledgerco.key, {**hello, "stream": True}).status_code,
        chat(gateway, ledgerco.key, {**hello, "temperature": 7}).status_code,
        chat(gateway, ledgerco.key, {**hello, "model": "sim/nothing"}).status_code,
    ]

    assert statuses[:2] == [200, 200]
    assert len(ledger_until(ledgerco, 4)) == 4
    client = redis_client()
    assert [key for key in client.scan_iter(f"{OPEN_PREFIX}*") if client.hlen(key)] == []


def _event_of(record: object) -> bytes:
    """The usage event inside an open record, in its wire form."""
    return orjson.dumps(orjson.loads(cast("str", record))["event"])
