"""billing_reconcile: ledger, rollups, invoice lines and Stripe agree to the cent, or it says where not and
exits non-zero."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
import stripe
from django.core.management import CommandError, call_command
from pytest_django import DjangoDbBlocker

from billing.models import Invoice, InvoiceLine
from tests.billing.shop import Shop, usage_add, usage_september
from tests.billing.test_invoicing import PERIOD, run_period


def reconcile(*args: str) -> str:
    out = StringIO()
    call_command("billing_reconcile", "--period", PERIOD, *args, stdout=out)
    return out.getvalue()


def reconcile_fails(*args: str) -> str:
    out = StringIO()
    with pytest.raises(CommandError, match="difference") as failure:
        call_command("billing_reconcile", "--period", PERIOD, *args, stdout=out)
    return out.getvalue() + str(failure.value)


@pytest.fixture
def invoiced(shop: Shop, stripe_local: stripe.StripeClient, django_db_blocker: DjangoDbBlocker) -> Shop:
    with django_db_blocker.unblock():
        usage_september(shop)
        run_period(shop)
    return shop


def test_an_invoiced_period_reconciles(invoiced: Shop, django_db_blocker: DjangoDbBlocker) -> None:
    with django_db_blocker.unblock():
        for tenant in invoiced.tenants:
            assert "1 tenant(s) reconciled" in reconcile("--tenant", tenant.slug)


def test_usage_recorded_after_the_invoice_is_a_difference(
    invoiced: Shop, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        usage_add(invoiced.basic, datetime(2026, 9, 29, tzinfo=UTC), "sim/smart", 500_000, 0)

        report = reconcile_fails("--tenant", invoiced.basic.slug)

        assert "bt-basic-co: ledger vs rollups: sim/smart simulator miss at 2.4/9.6 per 1M requests" in report
        assert "ledger vs invoice lines: sim/smart at 2.4/9.6 per 1M tokens" in report
        assert "1 difference" not in report  # several: requests, tokens, prices, the line


def test_a_changed_invoice_line_or_total_is_a_difference(
    invoiced: Shop, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        invoice = Invoice.objects.get(tenant=invoiced.pro, period=PERIOD)
        InvoiceLine.objects.filter(invoice=invoice, model="sim/smart").update(amount=Decimal("7.21"))

        report = reconcile_fails("--tenant", invoiced.pro.slug)
        assert "ledger 7.20, line 7.21" in report
        assert "invoice total: lines sum to 102.60, invoice says 102.59" in report

        Invoice.objects.filter(pk=invoice.pk).update(total=Decimal("102.60"))
        report = reconcile_fails("--tenant", invoiced.pro.slug)
        assert "invoice vs Stripe: ours 10260 cents, Stripe 10259 cents" in report


def test_billable_usage_without_an_invoice_is_a_difference(
    shop: Shop, stripe_local: stripe.StripeClient, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        usage_september(shop)

        assert "billable usage but no invoice" in reconcile_fails("--tenant", shop.payg.slug)


def test_bad_arguments_are_command_errors(world: object, db: None) -> None:
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("billing_reconcile", "--period", "2026-13")
    with pytest.raises(CommandError, match="No tenant"):
        call_command("billing_reconcile", "--period", PERIOD, "--tenant", "nobody")
    with pytest.raises(CommandError, match="has not ended"):
        call_command("billing_run", "--period", "2999-01")
