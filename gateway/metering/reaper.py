"""Settling the requests a dead process left open: bill what their last checkpoint says was delivered, and
give back their limiter slots and reservations, within seconds of the death (gateway.metering.liveness).

For every process in `gh:procs` whose heartbeat has expired, each open record in its `gh:open:<process>` hash
becomes, in one MULTI: the record's usage event (flagged `recovered`) appended to the usage stream, and the
limiter's settle of its admission (which frees its slot and reservation, charges its budget with the
recovered price, and removes the open record). Then the process leaves `gh:procs` once nothing of it is left.

Safe to run anywhere, any number of times, concurrently: the usage consumer runs it every second, the Celery
safety net every minute. Two reapers of the same record append the event twice (stored once: the ledger is
idempotent on request id) and settle it once (the settle's marker). If the process was not dead after all (a
heartbeat lost to a Redis outage longer than the TTL), its own event arrives later and replaces the recovered
record in the ledger (gateway.metering.store); its own settle then finds the request settled already.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import orjson

from gateway.limits.service import SETTLE_SOURCE, Admission, settle_call, settle_figures
from gateway.metering.dead_letters import OPEN_FIELD, dead_letter_add
from gateway.metering.emit import EVENT_FIELD, USAGE_STREAM, usage_event_payload
from gateway.metering.events import UsageEvent
from gateway.metering.liveness import HEARTBEAT_PREFIX, OPEN_PREFIX, PROCESSES

if TYPE_CHECKING:
    import redis
    from redis.commands.core import Script

log = logging.getLogger(__name__)

BATCH = 200
_scripts: dict[int, Script] = {}


def reap_dead(client: redis.Redis) -> int:
    """Settle the open requests of every process whose heartbeat has expired; returns how many were settled.

    Raises on Redis errors (the callers retry on their next pass)."""
    names = sorted(cast("set[str]", client.smembers(PROCESSES)))
    if not names:
        return 0
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.exists(f"{HEARTBEAT_PREFIX}{name}")
    alive = pipe.execute()
    return sum(_reap(client, name) for name, up in zip(names, alive, strict=True) if not up)


def _reap(client: redis.Redis, name: str) -> int:
    key = f"{OPEN_PREFIX}{name}"
    settled = 0
    cursor = 0
    while True:
        cursor, records = cast("tuple[int, dict[str, str]]", client.hscan(key, cursor, count=BATCH))
        for request_id, record in records.items():
            settled += _settle(client, key, request_id, record)
        if cursor == 0:
            break
    if settled:
        log.warning("reaper: process %s is gone; settled %d open request(s) from checkpoints", name, settled)
    # Forget the process once nothing of it is left (a process that was only cut off re-registers itself).
    pipe = client.pipeline(transaction=True)
    pipe.hlen(key)
    pipe.exists(f"{HEARTBEAT_PREFIX}{name}")
    left, alive = pipe.execute()
    if not left and not alive:
        client.srem(PROCESSES, name)
    return settled


def _settle(client: redis.Redis, key: str, request_id: str, record: str) -> int:
    try:
        data: Any = orjson.loads(record)
        event = UsageEvent.from_json_dict(data["event"])
        admission = Admission.from_json_dict(data["admission"])
    except Exception as error:  # not ours to understand: keep it for a person, and drop it from the hash
        pipe = client.pipeline(transaction=True)
        dead_letter_add(
            pipe,
            {OPEN_FIELD: record},
            source=f"open:{key}:{request_id}",
            reason=f"unreadable open record: {type(error).__name__}: {error}",
        )
        pipe.hdel(key, request_id)
        pipe.execute()
        return 0
    keys, args = settle_call(admission, **settle_figures(event))
    pipe = client.pipeline(transaction=True)
    pipe.xadd(USAGE_STREAM, {EVENT_FIELD: usage_event_payload(event)})
    _settle_script(client)(keys=keys, args=args, client=pipe)
    pipe.execute()
    return 1


def _settle_script(client: redis.Redis) -> Script:
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(SETTLE_SOURCE)
    return script
