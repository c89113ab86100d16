"""Periodic limiter work (Celery beat)."""

from __future__ import annotations

from celery import shared_task

from gateway.limits.alerts import budget_alerts_drain


@shared_task(name="gateway.limits.tasks.budget_alerts_drain")
def budget_alerts_drain_task() -> int:
    """Record the budget alerts the limiter reported and run the hooks; returns how many were new."""
    return budget_alerts_drain()
