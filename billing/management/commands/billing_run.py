"""billing_run --period YYYY-MM [--tenant S]: the invoice run of a closed period, in the foreground.

Idempotent: re-running a period, or running it again after a crash, never duplicates an invoice or a line.
While Stripe is unavailable it waits and resumes (GATEHOUSE_BILLING_RUN_RETRIES times,
GATEHOUSE_BILLING_RUN_RETRY_SECONDS apart). docs/BILLING.md.
"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from billing.management.options import period_options_add, period_options_read
from billing.models import Invoice, InvoiceRun
from billing.runs import invoice_run_create, invoice_run_execute
from billing.stripe_api import StripeUnavailableError


class Command(BaseCommand):
    help = "Invoice every tenant (or one) for a closed period: rollups, lines, Stripe invoices."

    def add_arguments(self, parser: ArgumentParser) -> None:
        period_options_add(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        period, tenant = period_options_read(options)
        try:
            run = invoice_run_create(period=period, tenant=tenant, trigger="command")
        except ValidationError as error:
            raise CommandError(error.messages[0]) from None
        retries = settings.GATEHOUSE_BILLING_RUN_RETRIES
        for attempt in range(retries + 1):
            try:
                run = invoice_run_execute(run, progress=self._progress)
                break
            except StripeUnavailableError as error:
                if attempt == retries:
                    raise CommandError(
                        f"Stripe unavailable, gave up after {attempt + 1} attempts: {error}"
                    ) from None
                wait = settings.GATEHOUSE_BILLING_RUN_RETRY_SECONDS
                self.stderr.write(f"Stripe unavailable ({error}); resuming in {wait:g} s")
                time.sleep(wait)
        self._summary(run)

    def _progress(self, run: InvoiceRun) -> None:
        self.stdout.write(f"[{run.tenants_done + run.tenants_failed}/{run.tenants_total}]", ending="\r")

    def _summary(self, run: InvoiceRun) -> None:
        invoices = Invoice.objects.filter(period=run.period)
        if run.tenant_id:
            invoices = invoices.filter(tenant_id=run.tenant_id)
        for invoice in invoices.select_related("tenant").order_by("tenant__slug"):
            self.stdout.write(
                f"{invoice.tenant.slug:<30} {invoice.status:<8} {invoice.total:>12} {invoice.currency}"
                f"  {invoice.stripe_invoice_id or '-'}"
            )
        self.stdout.write(
            f"run {run.pk} {run.period}: {run.status},"
            f" {run.tenants_done} invoiced, {run.tenants_failed} failed"
        )
        if run.status != InvoiceRun.Status.DONE:
            raise CommandError(run.last_error or "the run failed")
