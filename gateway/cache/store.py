"""Cache entries in the tenant's schema, read and written from the event loop without blocking it.

The hot path talks to PostgreSQL through psycopg's async connection pool (one per event loop), with tables
named by schema (`"t_acme".gateway_cacheentry`, the schema coming from the authenticated principal, never from
the request), so no connection's search_path is ever switched and one tenant's query cannot read another's
table. Reads happen on the hot path (an exact lookup is one indexed row; a semantic one an HNSW query);
writes (new entries, hit counts) run after the response has been sent, as background tasks (`later`).

HNSW with a filter (the scope) uses pgvector 0.8's iterative index scan (`hnsw.iterative_scan =
relaxed_order`), so a selective scope still finds its nearest entries instead of an empty result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from django.conf import settings
from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection, sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import AsyncConnectionPool

from gateway.bounds import text_bounded

log = logging.getLogger(__name__)

TABLE = "gateway_cacheentry"
_NUL_JSON = b"\\u0000"  # how JSON writes a NUL character
MAX_BACKGROUND = 1000  # pending writes per process; beyond that new entries are dropped (it is a cache)


@dataclass(frozen=True, slots=True)
class Candidate:
    id: int
    prompt: str
    similarity: float


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    prompt: str
    body: dict[str, Any]
    chunks: list[dict[str, Any]] | None
    served_model: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class NewEntry:
    exact_key: str
    scope_key: str
    prompt: str
    embedding: np.ndarray[Any, np.dtype[np.float32]] | None
    requested_model: str
    served_model: str
    body: dict[str, Any]
    chunks: list[dict[str, Any]] | None
    input_tokens: int
    output_tokens: int
    ttl_seconds: int


_pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[AsyncConnection[Any]]] = {}
_background: set[asyncio.Task[None]] = set()
_hits: dict[asyncio.AbstractEventLoop, dict[tuple[str, int], int]] = {}
HIT_FLUSH_SECONDS = 1.0


async def _configure(connection: AsyncConnection[Any]) -> None:
    set_json_loads(orjson.loads, connection)  # entries' bodies: several times faster than json.loads
    await register_vector_async(connection)
    await connection.execute("SET hnsw.iterative_scan = relaxed_order")


def _conninfo() -> str:
    db = settings.DATABASES["default"]
    return make_conninfo(
        dbname=str(db["NAME"]),
        user=str(db.get("USER") or "") or None,
        password=str(db.get("PASSWORD") or "") or None,
        host=str(db.get("HOST") or "") or None,
        port=str(db.get("PORT") or "") or None,
        application_name="gatehouse-cache",
    )


async def _pool() -> AsyncConnectionPool[AsyncConnection[Any]]:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = AsyncConnectionPool(
            _conninfo(),
            min_size=1,
            max_size=settings.GATEHOUSE_CACHE_DB_POOL_SIZE,
            open=False,
            configure=_configure,
            kwargs={"autocommit": True},
            timeout=1.0,  # waiting longer for a connection would cost more than the cache saves
        )
        _pools[loop] = pool
        await pool.open()
    return pool


def _table(schema: str) -> sql.Identifier:
    return sql.Identifier(schema, TABLE)


async def entry_exact(schema: str, exact_key: str) -> Entry | None:
    """The live entry with this exact key, if any."""
    return await _entry(schema, "exact_key", exact_key)


async def entry_by_id(schema: str, entry_id: int) -> Entry | None:
    return await _entry(schema, "id", entry_id)


async def _entry(schema: str, column: str, value: object) -> Entry | None:
    query = sql.SQL(
        "SELECT id, prompt, body, chunks, served_model, input_tokens, output_tokens FROM {} "
        "WHERE {} = %s AND expires_at > now()"
    ).format(_table(schema), sql.Identifier(column))
    async with (await _pool()).connection() as connection:
        row = await (await connection.execute(query, (value,))).fetchone()
    return Entry(*row) if row else None


async def candidates_nearest(
    schema: str, scope_key: str, vector: np.ndarray[Any, np.dtype[np.float32]], limit: int
) -> list[Candidate]:
    """The live entries of this scope nearest to `vector` (HNSW, cosine), most similar first."""
    query = sql.SQL(
        "SELECT id, prompt, 1 - (embedding <=> %(v)s) FROM {} "
        "WHERE scope_key = %(scope)s AND expires_at > now() AND embedding IS NOT NULL "
        "ORDER BY embedding <=> %(v)s LIMIT %(limit)s"
    ).format(_table(schema))
    async with (await _pool()).connection() as connection:
        cursor = await connection.execute(query, {"v": vector, "scope": scope_key, "limit": limit})
        rows = await cursor.fetchall()
    found = [Candidate(row[0], row[1], float(row[2])) for row in rows]
    return sorted(found, key=lambda c: c.similarity, reverse=True)  # relaxed_order may be slightly unordered


async def entry_insert(schema: str, entry: NewEntry, *, refresh: bool) -> bool:
    """Insert the entry; an existing one with its exact key is replaced only if expired or on `refresh`.

    Concurrent identical requests race here harmlessly: one row per exact key (unique), each write whole.
    An answer with a NUL character (PostgreSQL's text and jsonb refuse it) is not cached: returns False.
    The prompt is stored with NUL as U+FFFD (it is compared and shown, never served); keys hash the original.
    """
    body = orjson.dumps(entry.body)
    chunks = orjson.dumps(entry.chunks) if entry.chunks is not None else None
    if _NUL_JSON in body or (chunks is not None and _NUL_JSON in chunks):
        log.info("cache: an answer with a NUL character is not cached")
        return False
    now = datetime.now(UTC)
    query = sql.SQL(
        "INSERT INTO {table} AS e (exact_key, scope_key, prompt, embedding, requested_model, served_model, "
        "body, chunks, input_tokens, output_tokens, created_at, expires_at, hit_count) "
        "VALUES (%(exact_key)s, %(scope_key)s, %(prompt)s, %(embedding)s, %(requested_model)s, "
        "%(served_model)s, %(body)s, %(chunks)s, %(input_tokens)s, %(output_tokens)s, %(now)s, "
        "%(expires)s, 0) "
        "ON CONFLICT (exact_key) DO UPDATE SET scope_key = EXCLUDED.scope_key, prompt = EXCLUDED.prompt, "
        "embedding = EXCLUDED.embedding, requested_model = EXCLUDED.requested_model, "
        "served_model = EXCLUDED.served_model, body = EXCLUDED.body, chunks = EXCLUDED.chunks, "
        "input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens, "
        "created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, hit_count = 0, "
        "last_hit_at = NULL "
        "WHERE e.expires_at <= %(now)s OR %(refresh)s"
    ).format(table=_table(schema))
    params = {
        "exact_key": entry.exact_key,
        "scope_key": entry.scope_key,
        "prompt": entry.prompt.replace("\x00", "\ufffd"),
        "embedding": entry.embedding,
        "requested_model": text_bounded(entry.requested_model, 200),
        "served_model": text_bounded(entry.served_model, 200),
        "body": Jsonb(entry.body, dumps=_serialised(body)),
        "chunks": Jsonb(entry.chunks, dumps=_serialised(chunks)) if chunks is not None else None,
        "input_tokens": entry.input_tokens,
        "output_tokens": entry.output_tokens,
        "now": now,
        "expires": now + timedelta(seconds=entry.ttl_seconds),
        "refresh": refresh,
    }
    async with (await _pool()).connection() as connection:
        await connection.execute(query, params)
    return True


def _serialised(data: bytes) -> Callable[[Any], str]:
    """Jsonb's `dumps`, answering with the JSON already made (checked for NUL above)."""
    text = data.decode()
    return lambda _value: text


def hit_count_later(schema: str, entry_id: int) -> None:
    """Count a hit (hit count, last hit: eviction keeps popular entries). Hits are gathered in memory and
    written once a second, one UPDATE per schema: a popular entry costs no write per request."""
    loop = asyncio.get_running_loop()
    pending = _hits.setdefault(loop, {})
    if not pending:
        later(_hits_flush(pending), "hit counts")
    pending[(schema, entry_id)] = pending.get((schema, entry_id), 0) + 1


async def _hits_flush(pending: dict[tuple[str, int], int]) -> None:
    await asyncio.sleep(HIT_FLUSH_SECONDS)
    batch = dict(pending)
    pending.clear()
    by_schema: dict[str, list[tuple[int, int]]] = {}
    for (schema, entry_id), count in batch.items():
        by_schema.setdefault(schema, []).append((entry_id, count))
    async with (await _pool()).connection() as connection:
        for schema, rows in by_schema.items():
            query = sql.SQL(
                "UPDATE {} AS e SET hit_count = e.hit_count + v.n, last_hit_at = now() "
                "FROM unnest(%s::bigint[], %s::int[]) AS v(id, n) WHERE e.id = v.id"
            ).format(_table(schema))
            await connection.execute(query, ([r[0] for r in rows], [r[1] for r in rows]))


def later(work: Coroutine[Any, Any, None], what: str) -> None:
    """Run a cache write in the background (after the response); failures are logged, never raised."""
    if len(_background) >= MAX_BACKGROUND:
        work.close()
        log.warning("cache: %s dropped, %d writes already pending", what, len(_background))
        return

    async def run() -> None:
        try:
            await work
        except Exception:
            log.exception("cache: %s failed", what)

    task = asyncio.get_running_loop().create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)
