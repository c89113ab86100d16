"""Checkpoints of open requests: what a stream has delivered, written into its process's open-requests hash
so that, if the process dies, the reaper bills what the client received (gateway.metering.reaper).

The open record itself is written by the limiter's admission (one round trip the request makes anyway) and
removed by its settle; checkpoints replace it as the request goes. The first checkpoint of a stream is awaited
before its first byte (the served model, hence the price, is known from then on); later ones are sent at
most every GATEHOUSE_CHECKPOINT_SECONDS and not awaited: a lost checkpoint only means that a crash bills a
little less of what was delivered, never more.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

from django.conf import settings
from redis.exceptions import RedisError

from config.redis import hot_redis

log = logging.getLogger(__name__)

_SOURCE = (Path(__file__).parent / "checkpoint.lua").read_text()
_SHA = hashlib.sha1(_SOURCE.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
TIMEOUT_S = 0.25


def settled_marker(tenant_id: int, request_id: str) -> str:
    """The key settle.lua sets once a request is settled (per tenant: ids are ours, but keys stay apart)."""
    return f"gh:rl:settled:{tenant_id}:{request_id}"


async def checkpoint_write(open_key: str, tenant_id: int, request_id: str, record: bytes) -> bool:
    """Replace the request's open record with `record` unless it has been settled; False if Redis did not
    take it (never raises: the request goes on, its next checkpoint or its own event will do)."""
    ttl_ms = int(settings.GATEHOUSE_LIMITS_LEASE_SECONDS * 2000)
    keys = (open_key, settled_marker(tenant_id, request_id))
    args = (request_id, record, ttl_ms)
    try:
        async with asyncio.timeout(TIMEOUT_S):
            await hot_redis().evalsha(_SHA, _SOURCE, keys, args)
    except (RedisError, OSError, TimeoutError) as error:
        log.info("checkpoint of %s not written (%s)", request_id, type(error).__name__)
        return False
    return True
