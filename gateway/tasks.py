"""Celery tasks of the gateway (discovered by `app.autodiscover_tasks()`): thin wrappers over services."""

from __future__ import annotations

from gateway.cache.tasks import cache_evict_all_task
from gateway.limits.tasks import budget_alerts_drain_task
from gateway.metering.tasks import usage_consume_pending

__all__ = ["budget_alerts_drain_task", "cache_evict_all_task", "usage_consume_pending"]
