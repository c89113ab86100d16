"""The one place that builds Redis clients (sync here; the gateway adds its async client)."""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2, decode_responses=True)


def redis_client() -> redis.Redis:
    """A pooled client for settings.REDIS_URL (cached per URL, so tests can switch URLs)."""
    url: str = settings.REDIS_URL
    return _client(url)
