"""The usage consumer: moves usage events from the Redis Stream (and spool files) into tenant schemas.

At-least-once delivery plus an idempotent store gives exactly-once records:

- Entries are read with XREADGROUP (group `usage-writers`), stored (`usage_store`: one committed transaction
  per schema), and only then XACK'd and XDEL'd, in one MULTI. A consumer killed after the commit but before
  the ack leaves the entries pending: they are re-read (own pending, `0`) when a consumer of the same name
  restarts, or taken over by any consumer with XAUTOCLAIM once idle for `claim_idle_ms`, and stored again
  as no-ops (request_id is unique). A consumer killed before the commit stored nothing. Nothing is lost,
  nothing is recorded twice.
- Events are bounded where they are built (gateway.metering.events), so the database accepts every event that
  parses; events of older versions parse too (missing fields take defaults). An entry that cannot be parsed
  at all (not JSON, no request id or tenant), or, against expectations, that the database still rejects,
  is copied to the dead-letter stream `gh:usage:dead` with the reason, and acked: it never blocks the
  pipeline. That stream is capped (GATEHOUSE_USAGE_DEAD_MAX entries, each cut to DEAD_FIELD_MAX bytes), its
  entries counted in `gh:usage:dead:total` (both in /metrics), and `manage.py usage_dead_letters` lists,
  explains and replays them.
- Before reading, the consumer settles the open requests of web processes that died (gateway.metering.reaper)
  every `reap_every_s`: their recovered events join the stream like any other.
- Database or Redis outages are not the entries' fault: the batch stays pending and is retried.
- Spool files (written by emit when Redis was unreachable) are renamed, locked, stored, then deleted; a crash
  mid-drain leaves a `.draining` file that the next drain stores again, idempotently.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import orjson
from django.db import DataError, IntegrityError, close_old_connections
from redis.exceptions import ResponseError

from gateway.metering.dead_letters import DEAD_STREAM, dead_letter_add
from gateway.metering.emit import EVENT_FIELD, SPOOL_SUFFIX, USAGE_STREAM, usage_spool_dir
from gateway.metering.events import UsageEvent
from gateway.metering.reaper import reap_dead
from gateway.metering.refusals import KIND as REFUSALS
from gateway.metering.refusals import RefusalTally, refusals_parse, refusals_store
from gateway.metering.store import live_tenant_ids, usage_store

if TYPE_CHECKING:
    import redis

logger = logging.getLogger(__name__)

GROUP = "usage-writers"
DRAINING_SUFFIX = ".draining"
PAUSE_BEFORE_ACK_ENV = "GATEHOUSE_USAGE_TEST_PAUSE_BEFORE_ACK"

# Faults of the data, not of the database: isolate the event and dead-letter it.
_POISON = (DataError, IntegrityError, ValueError, TypeError, ArithmeticError)
_MALFORMED = (KeyError, ValueError, TypeError, ArithmeticError, AttributeError, orjson.JSONDecodeError)

Entry = tuple[str, dict[str, str]]


@dataclass(frozen=True)
class _Dead:
    entry_id: str
    fields: dict[str, str]
    reason: str


@dataclass(frozen=True)
class ConsumerOptions:
    """How a consumer reads: batch size, how long XREADGROUP blocks (keep it under the client's socket
    timeout), how long to linger after a batch smaller than `count` (so that a trickle of events is stored
    in a few larger transactions rather than one per request: far less CPU for the consumer and PostgreSQL,
    for at most `linger_s` more delay before a record is in the ledger), how idle another consumer's pending
    entries must be before they are taken over, and how often the loop reclaims and drains the spool."""

    count: int = 500
    block_ms: int = 1000
    linger_s: float = 0.1
    claim_idle_ms: int = 30_000
    reclaim_every_s: float = 30.0
    drain_every_s: float = 10.0
    reap_every_s: float = 1.0


def usage_group_ensure(client: redis.Redis) -> None:
    """Create the consumer group (and the stream) if missing; reading starts at the stream's first entry."""
    try:
        client.xgroup_create(USAGE_STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def usage_consume_batch(
    client: redis.Redis,
    consumer: str,
    *,
    count: int = 500,
    block_ms: int | None = 1000,
    pending: bool = False,
) -> int:
    """Read one batch (new entries, or with `pending` this consumer's own unacked ones), store it, ack it.

    Returns how many stream entries were handled (stored, skipped or dead-lettered) and acked; 0 when the
    stream had nothing (after blocking up to `block_ms`; None: do not block). Raises on database or Redis
    faults, leaving the batch pending.
    """
    start, block = ("0", None) if pending else (">", block_ms)
    reply = client.xreadgroup(GROUP, consumer, {USAGE_STREAM: start}, count=count, block=block)
    entries = [entry for _stream, batch in cast("list[Any]", reply or []) for entry in batch]
    return _handle_stream_entries(client, entries)


def usage_reclaim(client: redis.Redis, consumer: str, *, min_idle_ms: int, count: int = 500) -> int:
    """Take over entries pending for longer than `min_idle_ms` (their consumer died) and handle them.

    Returns how many entries were handled. A consumer that was merely slow may store the same events too:
    harmless, storing is idempotent.
    """
    handled = 0
    start = "0-0"
    while True:
        reply = client.xautoclaim(USAGE_STREAM, GROUP, consumer, min_idle_ms, start_id=start, count=count)
        start, entries = reply[0], reply[1]
        handled += _handle_stream_entries(client, entries)
        if start in ("0-0", b"0-0"):
            return handled


def usage_drain_spool(client: redis.Redis, directory: Path | None = None) -> int:
    """Store the events of every spool file in `directory` (default: DATA_DIR/usage-spool), then delete them.

    Returns how many lines were handled. A file is renamed before it is read (writers then start a new one)
    and locked while read, so a line being written is never missed; a crash before the delete leaves a
    `.draining` file that the next drain stores again, idempotently.
    """
    directory = directory or usage_spool_dir()
    if not directory.is_dir():
        return 0
    for path in sorted(directory.glob(f"*{SPOOL_SUFFIX}")):
        try:
            path.rename(path.with_name(f"{path.stem}.{uuid.uuid4().hex}{DRAINING_SUFFIX}"))
        except FileNotFoundError:
            continue  # another drainer took it
    return sum(_drain_file(client, path) for path in sorted(directory.glob(f"*{DRAINING_SUFFIX}")))


def usage_consume_once(client: redis.Redis, consumer: str, options: ConsumerOptions | None = None) -> int:
    """Drain spool files, reclaim stale pending entries, then handle everything in the stream; don't block.

    Returns how many entries (stream entries and spool lines) were handled.
    """
    options = options or ConsumerOptions()
    usage_group_ensure(client)
    reap_dead(client)
    handled = usage_drain_spool(client) + usage_reclaim(client, consumer, min_idle_ms=options.claim_idle_ms)
    for pending in (True, False):
        while batch := usage_consume_batch(
            client, consumer, count=options.count, block_ms=None, pending=pending
        ):
            handled += batch
    return handled


def usage_consume_forever(
    client: redis.Redis, consumer: str, stop: threading.Event, options: ConsumerOptions | None = None
) -> None:
    """Consume until `stop` is set; it is checked between batches, so a batch is always finished first.

    Survives Redis and database outages: logs, waits a second, and resumes with its own pending entries.
    """
    options = options or ConsumerOptions()
    backlog = True  # re-read our own pending entries first: left by a crash, an error, or a restart
    next_reclaim = next_drain = next_reap = 0.0
    while not stop.is_set():
        try:
            close_old_connections()
            if time.monotonic() >= next_reap:
                next_reap = time.monotonic() + options.reap_every_s
                reap_dead(client)
            if time.monotonic() >= next_drain:
                next_drain = time.monotonic() + options.drain_every_s
                _drain_logging_errors(client)
            if time.monotonic() >= next_reclaim:
                usage_group_ensure(client)
                usage_reclaim(client, consumer, min_idle_ms=options.claim_idle_ms, count=options.count)
                next_reclaim = time.monotonic() + options.reclaim_every_s
            handled = usage_consume_batch(
                client,
                consumer,
                count=options.count,
                block_ms=min(options.block_ms, int(options.reap_every_s * 1000)),
                pending=backlog,
            )
            backlog = backlog and handled > 0
            if 0 < handled < options.count and options.linger_s > 0:
                stop.wait(options.linger_s)
        except Exception as error:
            backlog, next_reclaim = True, 0.0
            close_old_connections()
            if isinstance(error, ResponseError) and "NOGROUP" in str(error):
                logger.warning("usage consumer: the group is gone (stream deleted?): re-creating it")
                continue
            logger.exception("usage consumer: batch failed; its entries stay pending and will be retried")
            stop.wait(1.0)


def _drain_logging_errors(client: redis.Redis) -> None:
    # A spool file that cannot be drained now must not hold up the stream.
    try:
        usage_drain_spool(client)
    except Exception:
        logger.exception("usage consumer: draining spool files failed; will retry")


def _handle_stream_entries(client: redis.Redis, entries: list[Any]) -> int:
    usable: list[Entry] = [(entry_id, data) for entry_id, data in entries if entry_id and data is not None]
    ids = [entry_id for entry_id, _fields in entries if entry_id]
    if not ids:
        return 0
    dead = _store_entries(usable)
    _pause_before_ack()
    pipe = client.pipeline(transaction=True)
    _dead_letter(pipe, dead)
    pipe.xack(USAGE_STREAM, GROUP, *ids)
    pipe.xdel(USAGE_STREAM, *ids)
    pipe.execute()
    return len(ids)


def _store_entries(entries: list[Entry]) -> list[_Dead]:
    """Store the entries' events (and refusal tallies); returns the entries that can never be stored."""
    dead: list[_Dead] = []
    parsed: list[tuple[Entry, UsageEvent]] = []
    tallies: list[RefusalTally] = []
    for entry in entries:
        try:
            item = _parse(entry[1])
        except _MALFORMED as error:
            dead.append(_Dead(entry[0], entry[1], f"malformed: {type(error).__name__}: {error}"[:500]))
            continue
        if isinstance(item, UsageEvent):
            parsed.append((entry, item))
        else:
            tallies += item
    if tallies:
        refusals_store(tallies, live_tenant_ids({tally.schema for tally in tallies}))
    if parsed:
        dead += _store_events(parsed)
    for letter in dead:
        logger.error("usage: entry %s dead-lettered to %s (%s)", letter.entry_id, DEAD_STREAM, letter.reason)
    return dead


def _store_events(parsed: list[tuple[Entry, UsageEvent]]) -> list[_Dead]:
    try:
        usage_store([event for _entry, event in parsed])
    except _POISON:
        # Events are bounded where they are built, so this is not expected: a column narrower than the bound
        # (a migration), say. Isolate the culprit rather than block the stream.
        logger.warning("usage: the database rejected a batch of %d; storing one by one", len(parsed))
    else:
        return []
    dead = []
    for entry, event in parsed:
        try:
            usage_store([event])
        except _POISON as error:
            dead.append(_Dead(entry[0], entry[1], f"rejected: {type(error).__name__}: {error}"[:500]))
    return dead


def _parse(entry_fields: dict[str, str]) -> UsageEvent | list[RefusalTally]:
    data = orjson.loads(entry_fields[EVENT_FIELD])
    if isinstance(data, dict) and REFUSALS in data:
        return refusals_parse(data)
    if not isinstance(data, dict):
        raise TypeError("the entry is not a JSON object")
    return UsageEvent.from_json_dict(data)


def _dead_letter(pipe: redis.client.Pipeline, dead: list[_Dead]) -> None:
    for item in dead:
        dead_letter_add(pipe, item.fields, source=item.entry_id, reason=item.reason)


def _pause_before_ack() -> None:
    # Test hook for the crash tests: the batch is committed, not yet acked; the test SIGKILLs us here.
    seconds = float(os.environ.get(PAUSE_BEFORE_ACK_ENV) or 0)
    if seconds > 0:
        logger.warning("usage: pausing %.1f s before ack (%s)", seconds, PAUSE_BEFORE_ACK_ENV)
        time.sleep(seconds)


def _drain_file(client: redis.Redis, path: Path) -> int:
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return 0
    with file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)  # waits for a writer still appending to this inode
        if os.fstat(file.fileno()).st_nlink == 0:
            return 0  # another drainer stored and deleted it meanwhile
        # The file is final: writers check the inode after locking. A last line without its newline was torn
        # by a crash mid-write (that emit never returned): it is stored if it parses, dead-lettered if not.
        lines = [line for line in file.read().split(b"\n") if line.strip()]
        entries = [
            (f"spool:{path.name}:{number}", {EVENT_FIELD: line.decode(errors="replace")})
            for number, line in enumerate(lines, start=1)
        ]
        dead = _store_entries(entries)
        if dead:
            pipe = client.pipeline(transaction=True)
            _dead_letter(pipe, dead)
            pipe.execute()
        path.unlink()
    logger.info("usage: drained %d spooled event(s) from %s", len(entries), path.name)
    return len(entries)
