"""Emitting usage events from the hot path: one XADD to the usage stream, or, if Redis fails, a local spool.

The guarantee (usage is money: never lost, never billed twice):

- `usage_emit` returns only once the event is durable in one of two places:
  1. the Redis Stream `gh:usage`: Redis acknowledged the XADD. The entry stays in the stream until a consumer
     has committed it to PostgreSQL and only then XACK+XDELs it. Redis runs with `appendonly yes` and
     `appendfsync everysec`, so a crash of Redis itself (not of our processes) can lose at most the last ~1 s
     of acknowledged XADDs: the one window we accept and document.
  2. the spool file of this process (`DATA_DIR/usage-spool/<host>-<pid>.jsonl`): when Redis is unreachable,
     errors or does not answer within `EMIT_TIMEOUT_S`, the event is appended as one JSON line and fsync'd
     before `usage_emit` returns. The usage consumer drains spool files into PostgreSQL. The spool is local
     to the machine: a consumer must run where web processes run (or share DATA_DIR).
- The gateway awaits `usage_emit` before it sends the response's last byte (the end of the JSON body, or the
  final SSE chunk / `data: [DONE]`). A client holding a complete response therefore has a durable event; a web
  process killed before that point also never completed the response. Cancelling the awaiting task (e.g. the
  client went away) does not cancel the emit: it runs to completion in a shielded task.
- An event may reach PostgreSQL twice (an XADD that timed out on our side but that Redis applied, then also
  spooled; a batch re-delivered after a consumer crash): RequestRecord.request_id is unique and storing is
  idempotent, so it is recorded, and billed, once.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from redis.exceptions import MaxConnectionsError

from config.redis import hot_redis, redis_client
from gateway.metering.events import UsageEvent, usage_event_json

logger = logging.getLogger(__name__)

USAGE_STREAM = "gh:usage"
EVENT_FIELD = "event"
EMIT_TIMEOUT_S = 0.5
SPOOL_SUFFIX = ".jsonl"

_spool_lock = threading.Lock()
_inflight: set[asyncio.Task[None]] = set()


def usage_event_payload(event: UsageEvent) -> bytes:
    """The wire form of an event: one orjson document, the same in the stream and in spool files."""
    return usage_event_json(event)


@dataclass(frozen=True, slots=True)
class Piggyback:
    """A Redis command sent in the same round trip as an event's XADD (the limiter's settle), so the request
    path pays one round trip for both. `retry` is called with the error if the command failed or its fate
    is unknown (the event itself is safe either way); the command must therefore be idempotent."""

    command: tuple[Any, ...]
    retry: Callable[[BaseException], None]


async def usage_emit(event: UsageEvent, piggyback: Piggyback | None = None) -> None:
    """Make `event` durable (Redis Stream, else the local spool) before returning; never raises for Redis.

    Takes at most about EMIT_TIMEOUT_S plus one small fsync'd write when Redis is down. Raises only if the
    spool cannot be written either (disk full, read-only DATA_DIR): then the caller must not claim success.
    """
    task = asyncio.ensure_future(_emit(event.request_id, usage_event_payload(event), piggyback))
    # Keep a strong reference: a shielded task must survive its caller's cancellation.
    _inflight.add(task)
    task.add_done_callback(_inflight.discard)
    await asyncio.shield(task)


async def emit_payload(payload: bytes, *, what: str) -> None:
    """`usage_emit` for another entry of the usage stream (a refusal tally): the same guarantee."""
    task = asyncio.ensure_future(_emit(what, payload, None))
    _inflight.add(task)
    task.add_done_callback(_inflight.discard)
    await asyncio.shield(task)


async def _emit(request_id: str, payload: bytes, piggyback: Piggyback | None) -> None:
    try:
        async with asyncio.timeout(EMIT_TIMEOUT_S):
            await _xadd(payload, piggyback)
    except Exception as error:  # whatever Redis does, the event must land in the spool
        if piggyback is not None:
            piggyback.retry(error)
        _log_spooled(request_id, error)
        await asyncio.to_thread(usage_spool_append, payload)


async def _xadd(payload: bytes, piggyback: Piggyback | None) -> None:
    """XADD the event, with the piggybacked command in the same write (one round trip for both)."""
    commands: list[tuple[Any, ...]] = [("XADD", USAGE_STREAM, "*", EVENT_FIELD, payload)]
    if piggyback is not None:
        commands.append(piggyback.command)
    while True:
        try:
            replies = await hot_redis().pipeline(commands)
        except MaxConnectionsError:
            # redis-py's pool is busy (TLS URLs only), Redis is fine: wait (within EMIT_TIMEOUT_S).
            await asyncio.sleep(0.002)
            continue
        if piggyback is not None and isinstance(replies[1], Exception):
            piggyback.retry(replies[1])  # e.g. NOSCRIPT after a Redis restart: the event is unaffected
        if isinstance(replies[0], Exception):
            raise replies[0]
        return


def usage_emit_sync(event: UsageEvent) -> None:
    """`usage_emit` for synchronous callers (tasks, commands, WSGI views): the same guarantee.

    Bounded by the sync client's timeouts (config.redis.redis_client), not by EMIT_TIMEOUT_S.
    """
    payload = usage_event_payload(event)
    try:
        redis_client().xadd(USAGE_STREAM, {EVENT_FIELD: payload})
    except Exception as error:  # whatever Redis does, the event must land in the spool
        _log_spooled(event.request_id, error)
        usage_spool_append(payload)


def _log_spooled(request_id: str, error: BaseException) -> None:
    # The error's class only: messages may carry connection details; events carry no prompt content.
    logger.warning("usage event %s spooled locally: Redis unavailable (%s)", request_id, type(error).__name__)


def usage_spool_dir() -> Path:
    """Where spool files live: DATA_DIR/usage-spool (read at call time, so tests can move it)."""
    return Path(settings.DATA_DIR) / "usage-spool"


def usage_spool_append(payload: bytes) -> Path:
    """Append one event line to this process's spool file and fsync it; returns the file's path.

    The file is locked (flock) while written; a drainer renames the file before it locks it, so after taking
    the lock we check that the path still names our inode, and start again on a fresh file if it does not:
    a line is never written into a file that a drainer has already read.
    """
    directory = usage_spool_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{socket.gethostname()}-{os.getpid()}{SPOOL_SUFFIX}"
    line = payload + b"\n"
    with _spool_lock:
        while True:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_ino != _inode(path):
                    continue  # renamed by a drainer between our open and our lock
                _write_all(fd, line)
                os.fsync(fd)
                _fsync_dir(directory)  # the file's directory entry must survive a power cut too
                return path
            finally:
                os.close(fd)  # also releases the lock


def _inode(path: Path) -> int:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
