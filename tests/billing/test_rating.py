"""Rating rules: proration across a mid-period plan change, allowances, minimums, rounding, empty periods."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tenants.utils import schema_context
from pytest_django import DjangoDbBlocker

from billing.invoicing import invoice_tenant_period
from billing.models import Invoice, InvoiceLine, Plan
from billing.periods import period_of
from billing.plans import tenant_plan_change
from billing.rating import cents, period_rate
from billing.rollups import rollup_period
from billing.runs import invoice_run_create
from billing.selectors import usage_by_model
from gateway.models import RequestRecord
from tenants.models import Tenant
from tests.billing.shop import Shop, usage_add

PERIOD = "2026-09"
HALFWAY = datetime(2026, 9, 16, tzinfo=UTC)  # 15 of September's 30 days on each side


def lines_of(tenant: Tenant) -> list[tuple[str, Decimal]]:
    rollup_period(tenant, PERIOD)
    return [(line.kind, line.amount) for line in period_rate(tenant, PERIOD).lines]


def test_a_mid_period_plan_change_prorates_fees_and_allowances_and_prices_usage_by_the_plan_then(
    shop: Shop, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        usage_add(shop.basic, datetime(2026, 9, 10, tzinfo=UTC), "sim/smart", 100_000, 20_000)  # $2.40/$9.60
        tenant_plan_change(tenant=shop.basic, plan=Plan.objects.get(slug="bt-pro"), at=HALFWAY)
        usage_add(shop.basic, datetime(2026, 9, 20, tzinfo=UTC), "sim/smart", 100_000, 20_000)  # fixed $3/$12

        rollup_period(shop.basic, PERIOD)
        rating = period_rate(shop.basic, PERIOD)

        assert [(line.kind, line.amount) for line in rating.lines] == [
            (InvoiceLine.Kind.USAGE, Decimal("0.43")),  # 0.24 + 0.192 = 0.432
            (InvoiceLine.Kind.USAGE, Decimal("0.54")),  # 0.30 + 0.24
            (InvoiceLine.Kind.BASE_FEE, Decimal("5.00")),  # BT Basic, half of $10
            (InvoiceLine.Kind.BASE_FEE, Decimal("50.00")),  # BT Pro, half of $100
            (InvoiceLine.Kind.ALLOWANCE, Decimal("-0.97")),  # 500,000 included tokens cover all 240,000 used
        ]
        assert rating.total == Decimal("55.00")
        assert "50.00% of the month" in rating.lines[3].description


def test_the_minimum_tops_up_and_the_allowance_never_exceeds_the_usage(
    shop: Shop, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        assert lines_of(shop.payg) == [(InvoiceLine.Kind.MINIMUM, Decimal("5.00"))]  # nothing used
        usage_add(shop.payg, datetime(2026, 9, 2, tzinfo=UTC), "sim/code", 100_000, 0)  # $0.125

        assert lines_of(shop.payg) == [
            (InvoiceLine.Kind.USAGE, Decimal("0.13")),
            (InvoiceLine.Kind.ALLOWANCE, Decimal("-0.13")),  # $1 included, capped at the usage line
            (InvoiceLine.Kind.MINIMUM, Decimal("5.00")),
        ]


def test_a_tenant_created_mid_period_pays_its_share_of_the_base_fee(
    shop: Shop, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        Tenant.objects.filter(pk=shop.basic.pk).update(created_at=HALFWAY)
        shop.basic.plan_assignments.update(starts_at=HALFWAY)

        assert lines_of(Tenant.objects.get(pk=shop.basic.pk)) == [
            (InvoiceLine.Kind.BASE_FEE, Decimal("5.00"))
        ]


def test_nothing_to_bill_makes_an_empty_invoice_without_calling_stripe(
    shop: Shop, django_db_blocker: DjangoDbBlocker, settings: object
) -> None:
    with django_db_blocker.unblock():
        free = Plan.objects.get(slug="free")
        Tenant.objects.filter(pk=shop.basic.pk).update(plan=free)
        shop.basic.plan_assignments.update(plan=free)
        usage_add(shop.basic, datetime(2026, 9, 2, tzinfo=UTC), "sim/fast", 0, 0, http_status=502)

        # No Stripe is configured at this address: any call would fail the test.
        settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # type: ignore[attr-defined]
        invoice = invoice_tenant_period(Tenant.objects.get(pk=shop.basic.pk), PERIOD)

        assert invoice.status == Invoice.Status.EMPTY
        assert (invoice.total, invoice.lines.count()) == (Decimal(0), 0)


@pytest.mark.parametrize(
    ("exact", "billed"),
    [("0.004999", "0.00"), ("0.005", "0.01"), ("1.235", "1.24"), ("-0.005", "-0.01"), ("-4.62173", "-4.62")],
)
def test_lines_round_half_up_to_the_cent_once(exact: str, billed: str) -> None:
    assert cents(Decimal(exact)) == Decimal(billed)


def test_a_month_in_progress_cannot_be_invoiced(db: None) -> None:
    with pytest.raises(ValidationError, match="has not ended"):
        invoice_run_create(period=period_of(timezone.now()), trigger="test")
    with pytest.raises(ValidationError, match="YYYY-MM"):
        invoice_run_create(period="2026-9", trigger="test")


def test_a_plan_in_another_currency_is_refused(acme: Tenant) -> None:
    euro = Plan.objects.create(slug="euro", name="Euro", currency="eur")

    with pytest.raises(ValidationError, match="bills in EUR"):
        tenant_plan_change(tenant=acme, plan=euro)
    assert Tenant.objects.get(pk=acme.pk).plan_id == acme.plan_id


def test_descriptions_use_the_plans_currency(acme: Tenant) -> None:
    euro = Plan.objects.create(slug="euro", name="Euro", currency="eur", monthly_fee=Decimal("49.00"))
    Tenant.objects.filter(pk=acme.pk).update(plan=euro)
    acme.plan_assignments.update(plan=euro)

    fee = period_rate(Tenant.objects.get(pk=acme.pk), period_of(timezone.now())).lines[0]

    assert fee.description.startswith("Euro plan, €49.00/month")


def test_records_from_before_unit_prices_were_kept_are_billed_at_their_own_prices(
    shop: Shop, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        (event,) = usage_add(shop.basic, datetime(2026, 9, 2, tzinfo=UTC), "sim/smart", 100_000, 20_000)
        with schema_context(shop.basic.schema_name):  # as the ledger stored it before this release
            RequestRecord.objects.filter(request_id=event.request_id).update(
                unit_input_price=0, unit_output_price=0
            )

        rollup_period(shop.basic, PERIOD)

        usage, fee = period_rate(shop.basic, PERIOD).lines

        assert (usage.amount, usage.exact_amount) == (Decimal("0.43"), event.price)  # $0.432 charged then
        assert "at their prices then (1 requests)" in usage.description
        assert fee.kind == InvoiceLine.Kind.BASE_FEE
        (portal_row,) = usage_by_model(tenant=shop.basic, period=PERIOD)  # the portal agrees with the invoice
        assert (portal_row.model, portal_row.amount) == ("sim/smart", Decimal("0.43"))
