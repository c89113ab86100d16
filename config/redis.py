"""The one place that builds Redis clients: a sync one (views, tasks, commands) and an asyncio one (the
gateway's hot path), both pooled per URL and per event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import cache
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import NoScriptError

from config.resp import Arg, Command, HotClient, HotRedis, hot_redis_supported


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2, decode_responses=True)


def redis_client() -> redis.Redis:
    """A pooled client for settings.REDIS_URL (cached per URL, so tests can switch URLs)."""
    url: str = settings.REDIS_URL
    return _client(url)


_async_clients: dict[tuple[str, int], aioredis.Redis] = {}
ASYNC_POOL_SIZE = 256


def async_redis_client() -> aioredis.Redis:
    """A pooled asyncio client for settings.REDIS_URL, one per event loop (clients cannot cross loops).

    Responses are bytes (no decoding), which is what the hot path wants.
    """
    url: str = settings.REDIS_URL
    key = (url, id(asyncio.get_running_loop()))
    client = _async_clients.get(key)
    if client is None:
        # A blocking pool: under a burst, callers wait (bounded) for a free connection instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=ASYNC_POOL_SIZE, timeout=2, socket_connect_timeout=2, socket_timeout=2
        )
        client = aioredis.Redis(connection_pool=pool)
        _async_clients[key] = client
    return client


class RedisPyHot:
    """HotRedis's interface over redis-py, for URLs the lean client does not speak (TLS)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def execute(self, *command: Arg) -> Any:
        return await self.client.execute_command(*command)  # type: ignore[no-untyped-call]

    async def pipeline(self, commands: Sequence[Command]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    async def evalsha(self, sha: str, source: str, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        try:
            return await self.execute("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.execute("EVAL", source, len(keys), *keys, *args)


_hot_clients: dict[tuple[str, int], HotClient] = {}


def hot_redis() -> HotClient:
    """The request path's client for settings.REDIS_URL, one per event loop: config.resp's lean multiplexed
    connection (about half of redis-py's CPU per command), or redis-py for URLs it does not speak."""
    url: str = settings.REDIS_URL
    key = (url, id(asyncio.get_running_loop()))
    client = _hot_clients.get(key)
    if client is None or (isinstance(client, HotRedis) and client.loop is not asyncio.get_running_loop()):
        # A loop's id can be reused by a later loop once it is gone: never hand over a dead loop's connection.
        client = _hot_clients[key] = (
            HotRedis(url) if hot_redis_supported(url) else RedisPyHot(async_redis_client())
        )
    return client
