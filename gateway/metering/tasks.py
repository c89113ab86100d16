"""Celery safety net for usage metering: the `consume_usage` process does the work; this periodic task makes
sure usage still reaches the ledger if that process is down (or was never started)."""

from __future__ import annotations

import socket

from celery import shared_task

from config.redis import redis_client
from gateway.metering.consumer import ConsumerOptions, usage_consume_once

# Much longer than a batch takes: the running consumer's in-flight entries are left alone.
SAFETY_NET_CLAIM_IDLE_MS = 5 * 60 * 1000


@shared_task(name="gateway.metering.tasks.usage_consume_pending")
def usage_consume_pending() -> int:
    """Store what is waiting (stream entries, entries stuck with dead consumers, this host's spool files);
    returns how many entries were handled. Idempotent, so overlapping the consumer process is harmless."""
    options = ConsumerOptions(claim_idle_ms=SAFETY_NET_CLAIM_IDLE_MS)
    return usage_consume_once(redis_client(), f"celery@{socket.gethostname()}", options)
