"""When each API key was last used, kept off the request path.

Authentication records a timestamp in a Redis hash (one HSET, no database write); a periodic Celery task
moves the timestamps into each tenant's `ApiKey.last_used_at`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime

from django_tenants.utils import schema_context

from config.redis import redis_client
from gateway.models import ApiKey

LAST_USED_KEY = "gh:keys:last_used"


def api_key_mark_used(*, schema_name: str, prefix: str, at: float | None = None) -> None:
    redis_client().hset(LAST_USED_KEY, f"{schema_name}:{prefix}", str(at or time.time()))


def api_keys_flush_last_used() -> int:
    """Write pending last-used timestamps to the tenants' schemas; returns how many keys were updated.

    The hash is renamed before it is read, so a timestamp recorded meanwhile lands in the next flush, and a
    crash between rename and write loses at most one "last used" refresh (never a billed event).
    """
    client = redis_client()
    batch_key = f"{LAST_USED_KEY}:flushing"
    if not client.exists(batch_key):
        if not client.exists(LAST_USED_KEY):
            return 0
        client.rename(LAST_USED_KEY, batch_key)
    pending: dict[str, str] = client.hgetall(batch_key)  # type: ignore[assignment]
    by_schema: dict[str, dict[str, datetime]] = defaultdict(dict)
    for field, stamp in pending.items():
        schema_name, _, prefix = field.partition(":")
        by_schema[schema_name][prefix] = datetime.fromtimestamp(float(stamp), tz=UTC)
    updated = 0
    for schema_name, stamps in by_schema.items():
        updated += _flush_schema(schema_name, stamps)
    client.delete(batch_key)
    return updated


def _flush_schema(schema_name: str, stamps: dict[str, datetime]) -> int:
    from tenants.models import Tenant

    if not Tenant.objects.filter(schema_name=schema_name).exists():
        return 0  # tenant deleted since
    updated = 0
    with schema_context(schema_name):
        for key in ApiKey.objects.filter(prefix__in=list(stamps)):
            stamp = stamps[key.prefix]
            if key.last_used_at is None or key.last_used_at < stamp:
                key.last_used_at = stamp
                key.save(update_fields=["last_used_at"])
                updated += 1
    return updated
