"""Invoice runs: one period, every tenant or one, with progress the console shows while it runs.

A run is a row (InvoiceRun) and a few worker threads taking tenants in turn and calling billing.invoicing,
which is idempotent per tenant and touches only that tenant's rows: re-running a period, or resuming a run
that was killed, never duplicates anything. A tenant whose step fails because Stripe is unavailable fails the
attempt (no new tenant is started; the Celery task retries the whole run later, skipping what is done); any
other failure is recorded on the run and the workers go on with the next tenants.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import stripe
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import F
from django.utils import timezone

from billing.invoicing import invoice_tenant_period
from billing.models import InvoiceRun
from billing.periods import period_is_closed, period_tenants
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
    return list(period_tenants(run.period).order_by("pk"))


def invoice_run_execute(
    run: InvoiceRun, *, progress: Callable[[InvoiceRun], None] | None = None, workers: int | None = None
) -> InvoiceRun:
    """Execute (or resume) a run, `workers` tenants at a time (GATEHOUSE_BILLING_RUN_CONCURRENCY: Stripe
    answers in tens to hundreds of milliseconds, and a tenant takes about 14 calls). Raises
    StripeUnavailableError, with progress saved, if Stripe is down: no new tenant is started then."""
    tenants = run_tenants(run)
    InvoiceRun.objects.filter(pk=run.pk).update(
        status=InvoiceRun.Status.RUNNING,
        started_at=run.started_at or timezone.now(),
        tenants_total=len(tenants),
        tenants_done=0,
        tenants_failed=0,
        attempts=F("attempts") + 1,
    )
    run.refresh_from_db()
    tally = _Tally(run=run, client=stripe_client(), progress=progress, pending=deque(tenants))
    threads = [
        threading.Thread(target=tally.work, name=f"invoice-run-{run.pk}-{n}")
        for n in range(max(1, min(workers or settings.GATEHOUSE_BILLING_RUN_CONCURRENCY, len(tenants))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if tally.unavailable is not None:
        raise tally.unavailable
    InvoiceRun.objects.filter(pk=run.pk).update(
        status=InvoiceRun.Status.FAILED if tally.failed else InvoiceRun.Status.DONE,
        finished_at=timezone.now(),
        last_error="\n".join(tally.errors)[:10_000],
    )
    run.refresh_from_db()
    return run


@dataclass
class _Tally:
    """The tenants still to invoice and what became of the others, shared by a run's worker threads."""

    run: InvoiceRun
    client: stripe.StripeClient
    progress: Callable[[InvoiceRun], None] | None
    pending: deque[Tenant]
    done: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    unavailable: StripeUnavailableError | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def work(self) -> None:
        try:
            while (tenant := self._next()) is not None:
                self._invoice(tenant)
        finally:
            connection.close()  # this thread's own connection

    def _next(self) -> Tenant | None:
        with self.lock:
            if self.unavailable is not None or not self.pending:
                return None
            return self.pending.popleft()

    def _invoice(self, tenant: Tenant) -> None:
        error_text = ""
        try:
            invoice_tenant_period(tenant, self.run.period, run=self.run, client=self.client)
        except StripeUnavailableError as error:
            with self.lock:
                self.unavailable = self.unavailable or error
            InvoiceRun.objects.filter(pk=self.run.pk).update(last_error=f"{tenant.slug}: {error}"[:2000])
            return
        except Exception as error:
            logger.exception("invoice run %s: tenant %s failed", self.run.pk, tenant.pk)
            error_text = f"{tenant.slug}: {error}"
        with self.lock:
            if error_text:
                self.failed += 1
                self.errors.append(error_text)
            else:
                self.done += 1
            done, failed = self.done, self.failed
            InvoiceRun.objects.filter(pk=self.run.pk).update(tenants_done=done, tenants_failed=failed)
            if self.progress is not None:
                self.run.tenants_done, self.run.tenants_failed = done, failed
                self.progress(self.run)


def invoice_run_fail(run_id: int, error: str) -> None:
    InvoiceRun.objects.filter(pk=run_id).update(
        status=InvoiceRun.Status.FAILED, finished_at=timezone.now(), last_error=error[:10_000]
    )
