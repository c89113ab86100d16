"""Invoice runs: one period, every tenant or one, with progress the console shows while it runs.

A run is a row (InvoiceRun) and a loop over tenants calling billing.invoicing, which is idempotent per tenant:
re-running a period, or resuming a run that was killed, never duplicates anything. A tenant whose step fails
because Stripe is unavailable fails the attempt (the Celery task retries the whole run later, skipping what
is done); any other failure is recorded on the run and the loop goes on with the next tenant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone

from billing.invoicing import invoice_tenant_period
from billing.models import Invoice, InvoiceRun
from billing.periods import period_bounds, period_is_closed
from billing.stripe_api import StripeUnavailableError, stripe_client
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def invoice_run_create(*, period: str, tenant: Tenant | None = None, trigger: str = "console") -> InvoiceRun:
    """Record a run to be executed (by the Celery task, or `billing_run` in the foreground).

    Raises ValidationError for a malformed period or one that has not ended: an invoice's lines are written
    once, so invoicing a month in progress would bill part of it for good."""
    if not period_is_closed(period, timezone.now()):  # also validates the format
        raise ValidationError(
            f"{period} has not ended yet: invoices are for whole months.", code="open_period"
        )
    return InvoiceRun.objects.create(period=period, tenant=tenant, trigger=trigger)


def run_tenants(run: InvoiceRun) -> list[Tenant]:
    """The tenants a run bills: one, or every tenant that existed before the period ended."""
    if run.tenant_id is not None:
        return [Tenant.objects.get(pk=run.tenant_id)]
    _, end = period_bounds(run.period)
    return list(Tenant.objects.exclude(schema_name="public").filter(created_at__lt=end).order_by("pk"))


def invoice_run_execute(
    run: InvoiceRun, *, progress: Callable[[InvoiceRun], None] | None = None
) -> InvoiceRun:
    """Execute (or resume) a run. Raises StripeUnavailableError, with progress saved, if Stripe is down."""
    tenants = run_tenants(run)
    InvoiceRun.objects.filter(pk=run.pk).update(
        status=InvoiceRun.Status.RUNNING,
        started_at=run.started_at or timezone.now(),
        tenants_total=len(tenants),
        attempts=F("attempts") + 1,
    )
    run.refresh_from_db()
    client = stripe_client()
    done = failed = 0
    errors = []
    for tenant in tenants:
        try:
            invoice_tenant_period(tenant, run.period, run=run, client=client)
            done += 1
        except StripeUnavailableError as error:
            InvoiceRun.objects.filter(pk=run.pk).update(
                tenants_done=done, tenants_failed=failed, last_error=f"{tenant.slug}: {error}"[:2000]
            )
            raise
        except Exception as error:
            logger.exception("invoice run %s: tenant %s failed", run.pk, tenant.pk)
            failed += 1
            errors.append(f"{tenant.slug}: {error}")
        InvoiceRun.objects.filter(pk=run.pk).update(tenants_done=done, tenants_failed=failed)
        if progress is not None:
            run.tenants_done, run.tenants_failed = done, failed
            progress(run)
    InvoiceRun.objects.filter(pk=run.pk).update(
        status=InvoiceRun.Status.FAILED if failed else InvoiceRun.Status.DONE,
        finished_at=timezone.now(),
        last_error="\n".join(errors)[:10_000],
    )
    run.refresh_from_db()
    return run


def invoice_run_fail(run_id: int, error: str) -> None:
    InvoiceRun.objects.filter(pk=run_id).update(
        status=InvoiceRun.Status.FAILED, finished_at=timezone.now(), last_error=error[:10_000]
    )


def period_invoices(period: str) -> list[Invoice]:
    return list(Invoice.objects.filter(period=period).select_related("tenant").order_by("tenant__slug"))
