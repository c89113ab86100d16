"""Telling every web process to drop cached hot-path state (see gateway.state)."""

from __future__ import annotations

import logging

from config.redis import redis_client

log = logging.getLogger(__name__)

INVALIDATE_CHANNEL = "gh:invalidate"


def invalidate_publish(message: str) -> None:
    """Publish `key:<prefix>`, `tenant:<id>`, `plan:<id>` or `catalog`. Never raises: the caches' TTL still
    bounds staleness if Redis is down, and the write that triggered this must not fail because of it."""
    try:
        redis_client().publish(INVALIDATE_CHANNEL, message)
    except Exception:
        log.warning("could not publish invalidation %s", message, exc_info=True)
