"""billing_reconcile --period YYYY-MM [--tenant S]: prove that ledger, rollups, invoice lines and Stripe
invoices agree to the cent; exits non-zero, listing every difference, when they do not. docs/BILLING.md."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing.management.options import period_options_add, period_options_read
from billing.reconcile import reconcile_period


class Command(BaseCommand):
    help = "Check a period's ledger, rollups, invoice lines and Stripe invoices against each other."

    def add_arguments(self, parser: ArgumentParser) -> None:
        period_options_add(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        period, tenant = period_options_read(options)
        tenants = [tenant] if tenant else None
        checked, differences = reconcile_period(period, tenants=tenants)
        for difference in differences:
            self.stdout.write(str(difference))
        if differences:
            raise CommandError(f"{period}: {len(differences)} difference(s) in {checked} tenant(s)")
        self.stdout.write(f"{period}: {checked} tenant(s) reconciled, ledger = rollups = invoices = Stripe")
