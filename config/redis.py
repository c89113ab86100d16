"""The one place that builds Redis clients: a sync one (views, tasks, commands) and an asyncio one (the
gateway's hot path), both pooled per URL and per event loop."""

from __future__ import annotations

import asyncio
from functools import cache

import redis
import redis.asyncio as aioredis
from django.conf import settings


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
