"""Billing's Celery tasks: rollups, invoice runs (with retries while Stripe is unavailable), grace periods
and the meter-event outbox."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.app.task import Task
from django.conf import settings
from django.utils import timezone

from billing.grace import grace_enforce
from billing.invoicing import customers_ensure
from billing.models import InvoiceRun
from billing.periods import period_previous
from billing.rollups import rollup_all_pending
from billing.runs import invoice_run_create, invoice_run_execute, invoice_run_fail
from billing.stripe_api import StripeUnavailableError

logger = logging.getLogger(__name__)


@shared_task(name="billing.tasks.rollups_update")
def rollups_update() -> int:
    return rollup_all_pending()


@shared_task(bind=True, name="billing.tasks.invoice_run", acks_late=True)
def invoice_run_task(self: Task[[int], str], run_id: int) -> str:
    """Execute a run; while Stripe is unavailable, retry it (resuming where it stopped) on a schedule."""
    run = InvoiceRun.objects.get(pk=run_id)
    if run.status in (InvoiceRun.Status.DONE,):
        return run.status
    try:
        return invoice_run_execute(run).status
    except StripeUnavailableError as error:
        if self.request.retries >= settings.GATEHOUSE_BILLING_RUN_RETRIES:
            invoice_run_fail(
                run_id, f"Stripe unavailable, gave up after {self.request.retries} retries: {error}"
            )
            raise
        logger.warning("invoice run %s: Stripe unavailable (%s); retrying", run_id, error)
        raise self.retry(exc=error, countdown=settings.GATEHOUSE_BILLING_RUN_RETRY_SECONDS) from error


@shared_task(name="billing.tasks.invoice_run_previous_month")
def invoice_run_previous_month() -> int:
    """Celery beat, on the 1st: the run of the month that just ended (once; a re-run is harmless anyway)."""
    period = period_previous(timezone.now())
    existing = InvoiceRun.objects.filter(period=period, tenant__isnull=True, trigger="schedule").first()
    run = existing or invoice_run_create(period=period, trigger="schedule")
    invoice_run_task.delay(run.pk)
    return run.pk


@shared_task(name="billing.tasks.grace_enforce")
def grace_enforce_task() -> int:
    return grace_enforce()


@shared_task(name="billing.tasks.meter_events_send")
def meter_events_send_task() -> int:
    if settings.GATEHOUSE_BILLING_MODE != "meters":
        return 0
    from billing.meters import meter_events_queue, meter_events_send

    customers_ensure()  # meter events name a customer: every tenant gets one before its usage is queued
    meter_events_queue()
    sent: int = meter_events_send()
    return sent
