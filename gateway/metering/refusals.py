"""Requests refused inside a web process, counted per API key, minute and reason instead of one ledger row
each: a tenant flooding far past its limits costs no database write per request, yet every answered request
is accounted for (RefusalCount rows in the tenant's schema).

Which refusals: those decided without Redis or the database, with a valid key: the process's memory of an
RPM refusal or of its own requests in flight (gateway.limits.deny), a suspended tenant, a key used on another
tenant's host. Refusals decided by the limiter's Redis call, and every other answer, have their usage event.

How: the process keeps cumulative counts per (tenant, key, minute, code) in memory and, at most every
FLUSH_SECONDS while any changed, appends one tally to the usage stream (or the local spool when Redis is
away), like a usage event. The consumer keeps, per (minute, key, code, process), the largest count it has
seen: re-delivered or reordered tallies change nothing, and a minute's total is the sum over processes.
A process killed between two flushes loses at most FLUSH_SECONDS of refusal counts (refusals cost nothing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import connection, transaction
from django_tenants.utils import schema_context

from gateway.bounds import int_bounded, text_bounded
from gateway.metering.emit import emit_payload
from gateway.metering.liveness import process_identity

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
MAX_TALLIES = 50_000  # distinct (tenant, key, minute, code) in memory; beyond that, flushed at once
KIND = "refusals"

Key = tuple[str, int, str, int, str, int]  # schema, tenant id, key prefix, minute (epoch s), code, status
_tally: dict[Key, int] = {}
_dirty: set[Key] = set()
_flusher: asyncio.Task[None] | None = None


@dataclass(frozen=True, slots=True)
class RefusalTally:
    """One process's cumulative count of one kind of refusal, for one key and minute."""

    schema: str
    tenant_id: int
    key_prefix: str
    minute: int  # epoch seconds, a multiple of 60
    code: str
    http_status: int
    count: int
    source: str


def refusal_count(*, schema: str, tenant_id: int, key_prefix: str, code: str, http_status: int) -> None:
    """Count one refusal of this process (on the event loop: flushed by a task of that loop)."""
    minute = int(time.time()) // 60 * 60
    key = (schema, tenant_id, key_prefix, minute, code, http_status)
    _tally[key] = _tally.get(key, 0) + 1
    _dirty.add(key)
    global _flusher
    if _flusher is None or _flusher.done():
        _flusher = asyncio.get_running_loop().create_task(_flush_soon())


async def _flush_soon() -> None:
    await asyncio.sleep(0 if len(_tally) >= MAX_TALLIES else FLUSH_SECONDS)
    await refusals_flush()


async def refusals_flush() -> None:
    """Send the counts that changed since the last flush (their cumulative values); forget past minutes."""
    if not _dirty:
        return
    source = process_identity().name
    changed = [RefusalTally(*key, count=_tally[key], source=source) for key in sorted(_dirty)]
    _dirty.clear()
    await emit_payload(refusals_payload(changed), what=f"{len(changed)} refusal tallies")
    current = int(time.time()) // 60 * 60
    for key in [key for key in _tally if key[3] < current - 60 and key not in _dirty]:
        del _tally[key]


def refusals_payload(tallies: Sequence[RefusalTally]) -> bytes:
    return orjson.dumps({KIND: [list(_row(t)) for t in tallies]})


def refusals_parse(data: dict[str, Any]) -> list[RefusalTally]:
    """The tallies of a stream entry or spool line (`data` has the KIND key). Raises on malformed data."""
    tallies = []
    for row in data[KIND]:
        schema, tenant_id, key_prefix, minute, code, status, count, source = row
        tallies.append(
            RefusalTally(
                schema=text_bounded(schema, 63),
                tenant_id=int(tenant_id),
                key_prefix=text_bounded(key_prefix, 16),
                minute=int_bounded(minute, 0, 253_402_300_740),
                code=text_bounded(code, 40),
                http_status=int_bounded(status, 0, 999),
                count=int_bounded(count),
                source=text_bounded(source, 100),
            )
        )
    return tallies


def refusals_store(tallies: Iterable[RefusalTally], live: dict[str, int]) -> int:
    """Upsert the tallies into their tenants' RefusalCount rows, keeping the larger count; `live` maps the
    schemas of existing tenants to their ids (tallies of others are dropped). Returns the rows written."""
    from gateway.models import RefusalCount

    by_schema: dict[str, list[RefusalTally]] = {}
    for tally in tallies:
        if live.get(tally.schema) == tally.tenant_id:
            by_schema.setdefault(tally.schema, []).append(tally)
    written = 0
    table = connection.ops.quote_name(RefusalCount._meta.db_table)
    for schema, rows in by_schema.items():
        with schema_context(schema), transaction.atomic(), connection.cursor() as cursor:
            for tally in rows:
                # A plain table name: schema_context has set the search path to the tenant's schema.
                cursor.execute(
                    f"INSERT INTO {table} (minute, api_key_prefix, code, http_status, source, count) "  # noqa: S608
                    "VALUES (%s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (minute, api_key_prefix, code, source) "
                    f"DO UPDATE SET count = GREATEST({table}.count, EXCLUDED.count)",
                    [
                        datetime.fromtimestamp(tally.minute, tz=UTC),
                        tally.key_prefix,
                        tally.code,
                        tally.http_status,
                        tally.source,
                        tally.count,
                    ],
                )
                written += 1
    return written


def _row(tally: RefusalTally) -> tuple[object, ...]:
    return (
        tally.schema,
        tally.tenant_id,
        tally.key_prefix,
        tally.minute,
        tally.code,
        tally.http_status,
        tally.count,
        tally.source,
    )
