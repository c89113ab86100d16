"""Celery tasks of the gateway (discovered by `app.autodiscover_tasks()`): thin wrappers over services."""

from __future__ import annotations

from gateway.metering.tasks import usage_consume_pending

__all__ = ["usage_consume_pending"]
