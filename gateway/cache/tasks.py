"""Periodic cache maintenance: expired entries and entries beyond each tenant's `max_entries` are deleted."""

from __future__ import annotations

from celery import shared_task

from gateway.cache.manage import cache_evict_all


@shared_task(name="gateway.cache.tasks.cache_evict_all")
def cache_evict_all_task() -> int:
    """Evict in every tenant's cache; returns how many entries were deleted."""
    return cache_evict_all()
