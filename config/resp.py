"""A lean asyncio Redis client for the request path: one multiplexed connection per event loop.

redis-py's asyncio client costs about 110 µs of CPU per command on this machine (connection pool, retry and
timeout wrappers, command packing), of which the socket round trip is about 50. The request path makes two
commands per request (the limiter's admission, the usage event with the settle) and a stream one more (its
first checkpoint), so that overhead is a tenth of a request's CPU. Here, commands are written to one
connection and their replies (parsed by hiredis) resolve futures in order: Redis answers a connection's
commands in the order it received them, so no pool and no per-command lock are needed, and a pipeline is just
several commands written at once.

Replies are bytes, ints, lists or None; an error reply is returned (inside `pipeline`) or raised (`execute`)
as redis-py's exception (`ResponseError`, `NoScriptError`), and a lost or refused connection raises redis-py's
`ConnectionError`, so callers handle both clients alike. Timeouts are the caller's (`asyncio.timeout`): a
cancelled command's reply is still read and dropped, so replies never shift. Plain TCP or unix sockets with
optional AUTH and SELECT; `rediss://` (TLS) URLs are not supported here (`hot_redis_supported`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlparse

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

CONNECT_TIMEOUT_S = 2.0
Arg = str | bytes | int
Command = Sequence[Arg]


class HotClient(Protocol):
    """What the request path asks of Redis: `HotRedis`, or redis-py behind the same three methods."""

    async def execute(self, *command: Arg) -> Any: ...

    async def pipeline(self, commands: Sequence[Command]) -> list[Any]: ...

    async def evalsha(self, sha: str, source: str, keys: Sequence[Arg], args: Sequence[Arg]) -> Any: ...


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=ResponseError)
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            if not self.waiting:  # nothing asked for it (RESP2 sends nothing unasked outside pub/sub)
                continue
            waiter = self.waiting.popleft()
            if not waiter.done():  # a cancelled (timed-out) command: its reply is read and dropped
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or RedisConnectionError("Redis closed the connection")
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(RedisConnectionError(f"Redis connection lost: {self.lost}"))

    def send(self, payload: bytes, count: int) -> list[asyncio.Future[Any]]:
        if self.lost is not None or self.transport is None or self.transport.is_closing():
            raise RedisConnectionError("Redis connection is closed")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(count)]
        self.waiting.extend(futures)
        self.transport.write(payload)
        return futures


def pack(command: Command) -> bytes:
    """One command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(command)]
    for arg in command:
        if isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            data = arg
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class HotRedis:
    """One multiplexed connection to the Redis at `url`, (re)connected on first use after a loss."""

    def __init__(self, url: str) -> None:
        self.options: dict[str, Any] = dict(parse_url(url))
        self.loop = asyncio.get_running_loop()  # its connection belongs to this loop only
        self.protocol: _Protocol | None = None
        self.connecting: asyncio.Task[_Protocol] | None = None

    async def execute(self, *command: Arg) -> Any:
        """Run one command; raises redis-py's ResponseError (or NoScriptError) for an error reply."""
        reply = (await self.pipeline([command]))[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def pipeline(self, commands: Sequence[Command]) -> list[Any]:
        """Run commands in one write; their replies in order, error replies as exception instances
        (NOSCRIPT as NoScriptError). Raises redis-py's ConnectionError if the connection fails."""
        protocol = await self._connected()
        futures = protocol.send(b"".join(pack(command) for command in commands), len(commands))
        replies = [await future for future in futures]
        return [_error(reply) if isinstance(reply, ResponseError) else reply for reply in replies]

    async def evalsha(self, sha: str, source: str, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """EVALSHA, falling back to EVAL once after a Redis restart (NOSCRIPT)."""
        try:
            return await self.execute("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.execute("EVAL", source, len(keys), *keys, *args)

    async def _connected(self) -> _Protocol:
        protocol = self.protocol
        if protocol is not None and protocol.lost is None:
            return protocol
        if self.connecting is None or self.connecting.done():
            self.connecting = asyncio.ensure_future(self._connect())
        return await asyncio.shield(self.connecting)

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                if self.options.get("path"):
                    _, protocol = await loop.create_unix_connection(_Protocol, self.options["path"])
                else:
                    host, port = self.options.get("host", "localhost"), self.options.get("port", 6379)
                    _, protocol = await loop.create_connection(_Protocol, host, port)
                await _handshake(protocol, self.options)
        except (OSError, TimeoutError) as error:
            raise RedisConnectionError(f"cannot connect to Redis: {error}") from error
        self.protocol = protocol
        return protocol


async def _handshake(protocol: _Protocol, options: dict[str, Any]) -> None:
    commands: list[Command] = []
    if options.get("password"):
        username = options.get("username")
        commands.append(
            ("AUTH", username, options["password"]) if username else ("AUTH", options["password"])
        )
    if options.get("db"):
        commands.append(("SELECT", int(options["db"])))
    if not commands:
        return
    for reply in [await f for f in protocol.send(b"".join(pack(c) for c in commands), len(commands))]:
        if isinstance(reply, ResponseError):
            raise RedisConnectionError(f"Redis refused the connection's set-up: {reply}")


def _error(reply: ResponseError) -> ResponseError:
    return NoScriptError(str(reply)) if str(reply).startswith("NOSCRIPT") else reply


def hot_redis_supported(url: str) -> bool:
    """Plain TCP and unix-socket URLs; TLS (rediss://) goes through redis-py."""
    return urlparse(url).scheme in ("redis", "unix")
