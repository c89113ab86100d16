"""Celery tasks of the gateway: thin wrappers over services."""

from __future__ import annotations

from celery import shared_task

from gateway import key_usage


@shared_task(name="gateway.tasks.api_keys_flush_last_used")
def api_keys_flush_last_used() -> int:
    return key_usage.api_keys_flush_last_used()
