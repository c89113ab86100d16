"""The invoice run end to end, against localstripe with its signed webhooks delivered to a live gateway:
usage of three tenants on three plans -> rollups -> lines -> Stripe invoices equal to the ledger to the cent
-> webhooks mark them paid; an unpaid one suspends its tenant after the grace period until it is paid."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import stripe
from django.conf import settings
from pytest_django import DjangoDbBlocker

from billing.grace import grace_enforce
from billing.models import Invoice, InvoiceLine, InvoiceRun, StripeCustomer
from billing.reconcile import reconcile_period
from billing.runs import invoice_run_create, invoice_run_execute
from billing.tasks import meter_events_send_task
from gateway.keys import api_key_create
from tenants.models import Tenant
from tests.billing.shop import Shop, usage_september
from tests.stripe_server import localstripe_webhook

PERIOD = "2026-09"
EXPECTED_TOTALS = {"basic": Decimal("10.95"), "pro": Decimal("102.59"), "payg": Decimal("5.00")}


def wait_until(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def run_period(shop: Shop) -> InvoiceRun:
    return invoice_run_execute(invoice_run_create(period=PERIOD, trigger="test"))


def invoices_of(shop: Shop) -> dict[str, Invoice]:
    return {
        name: Invoice.objects.get(tenant=tenant, period=PERIOD)
        for name, tenant in zip(EXPECTED_TOTALS, shop.tenants, strict=True)
    }


def test_rating_follows_each_plan(
    shop: Shop, stripe_local: stripe.StripeClient, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        usage_september(shop)
        run = run_period(shop)
        invoices = invoices_of(shop)

        assert run.status == InvoiceRun.Status.DONE
        assert {name: invoice.total for name, invoice in invoices.items()} == EXPECTED_TOTALS
        basic = [(line.kind, line.amount) for line in invoices["basic"].lines.all()]
        assert basic == [
            (InvoiceLine.Kind.USAGE, Decimal("0.09")),  # sim/fast: 360,000 x $0.12 + 90,000 x $0.48 per 1M
            (InvoiceLine.Kind.CACHE_HITS, Decimal("0.00")),  # the same at 10 %: $0.00288
            (InvoiceLine.Kind.USAGE, Decimal("0.86")),  # sim/smart at $2.40 / $9.60
            (InvoiceLine.Kind.BASE_FEE, Decimal("10.00")),
        ]
        pro = {line.kind: line for line in invoices["pro"].lines.all() if line.kind != InvoiceLine.Kind.USAGE}
        assert pro[InvoiceLine.Kind.ALLOWANCE].amount == Decimal("-4.62")  # 1M of 1.56M tokens of $7.2099
        smart = invoices["pro"].lines.get(model="sim/smart")
        assert (smart.unit_input_price, smart.unit_output_price) == (Decimal(3), Decimal(12))
        assert smart.amount == Decimal("7.20")
        payg = [(line.kind, line.amount) for line in invoices["payg"].lines.all()]
        assert payg == [
            (InvoiceLine.Kind.USAGE, Decimal("1.50")),
            (InvoiceLine.Kind.ALLOWANCE, Decimal("-1.00")),
            (InvoiceLine.Kind.MINIMUM, Decimal("4.50")),
        ]


def stripe_invoices(client: stripe.StripeClient, customer: str) -> list[dict[str, Any]]:
    return [invoice.to_dict() for invoice in client.v1.invoices.list(params={"customer": customer}).data]


def test_end_to_end_paid_by_webhook_and_unpaid_suspends_after_grace(
    shop: Shop,
    stripe_local: stripe.StripeClient,
    localstripe: str,
    live_server_url: str,
    django_db_blocker: DjangoDbBlocker,
) -> None:
    localstripe_webhook(localstripe, f"{live_server_url}/stripe/webhook", settings.STRIPE_WEBHOOK_SECRET)
    with django_db_blocker.unblock():
        usage_september(shop)
        key = api_key_create(tenant=shop.payg, name="e2e").raw_key
        run_period(shop)
        invoices = invoices_of(shop)

        # Stripe holds one invoice per tenant whose total is the ledger's, to the cent.
        for name, invoice in invoices.items():
            assert invoice.status == Invoice.Status.OPEN
            remote = stripe_invoices(stripe_local, invoice.stripe_customer_id)
            # (localstripe also made the $0 invoice of the $0 subscription it needs: see billing.stripe_api)
            billed = [r for r in remote if r["total"]]
            assert [r["id"] for r in billed] == [invoice.stripe_invoice_id], name
            assert billed[0]["total"] == int(EXPECTED_TOTALS[name] * 100) == invoice.total_cents
        assert reconcile_period(PERIOD, tenants=shop.tenants, client=stripe_local) == (3, [])

        # Two pay; localstripe's signed webhooks reach the gateway and mark them paid.
        for name in ("basic", "pro"):
            stripe_local.v1.invoices.pay(invoices[name].stripe_invoice_id)
        paid = [invoices["basic"].pk, invoices["pro"].pk]
        wait_until(lambda: Invoice.objects.filter(pk__in=paid, status=Invoice.Status.PAID).count() == 2)

        # The third stays unpaid: within grace nothing happens; after it, the tenant is suspended.
        issued = Invoice.objects.get(pk=invoices["payg"].pk).issued_at
        assert issued is not None
        assert grace_enforce(issued + timedelta(days=settings.GATEHOUSE_BILLING_GRACE_DAYS - 1)) == 0
        assert grace_enforce(issued + timedelta(days=settings.GATEHOUSE_BILLING_GRACE_DAYS, seconds=1)) == 1
        assert Tenant.objects.get(pk=shop.payg.pk).status == Tenant.Status.SUSPENDED
        assert Tenant.objects.get(pk=shop.basic.pk).status == Tenant.Status.ACTIVE

        def answer() -> httpx.Response:
            body = {"model": "sim/fast", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
            headers = {"authorization": f"Bearer {key}"}
            return httpx.post(
                f"{live_server_url}/v1/chat/completions", json=body, headers=headers, timeout=30
            )

        wait_until(lambda: answer().status_code == 403)
        refused = answer().json()["error"]
        assert refused["code"] == "tenant_suspended"
        assert "unpaid invoice" in refused["message"]

        # Paying it reinstates the tenant (through the webhook alone).
        stripe_local.v1.invoices.pay(invoices["payg"].stripe_invoice_id)
        wait_until(lambda: Tenant.objects.get(pk=shop.payg.pk).status == Tenant.Status.ACTIVE)
        wait_until(lambda: answer().status_code == 200)
        assert Invoice.objects.get(pk=invoices["payg"].pk).status == Invoice.Status.PAID


def test_rerunning_a_period_duplicates_nothing(
    shop: Shop, stripe_local: stripe.StripeClient, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        usage_september(shop)
        run_period(shop)
        before = {i.pk: (i.uid, i.stripe_invoice_id, i.total) for i in invoices_of(shop).values()}
        lines = sorted(
            InvoiceLine.objects.filter(invoice_id__in=before).values_list("uid", "stripe_invoice_item_id")
        )

        again = run_period(shop)

        assert again.status == InvoiceRun.Status.DONE
        assert {i.pk: (i.uid, i.stripe_invoice_id, i.total) for i in invoices_of(shop).values()} == before
        assert (
            sorted(
                InvoiceLine.objects.filter(invoice_id__in=before).values_list("uid", "stripe_invoice_item_id")
            )
            == lines
        )
        for invoice in invoices_of(shop).values():
            billed = [r for r in stripe_invoices(stripe_local, invoice.stripe_customer_id) if r["total"]]
            assert [r["id"] for r in billed] == [invoice.stripe_invoice_id]
        assert reconcile_period(PERIOD, tenants=shop.tenants, client=stripe_local) == (3, [])


@pytest.mark.django_db
def test_meters_mode_gives_every_tenant_a_stripe_customer_before_its_usage_is_reported(
    stripe_local: stripe.StripeClient, settings: Any, world: object
) -> None:
    settings.GATEHOUSE_BILLING_MODE = "meters"
    tenants = Tenant.objects.exclude(schema_name="public")

    meter_events_send_task()

    customers = StripeCustomer.objects.filter(tenant__in=tenants, deleted_at__isnull=True)
    assert customers.count() == tenants.count() > 0
    for customer in customers:
        remote = stripe_local.v1.customers.retrieve(customer.customer_id).to_dict()
        assert remote["metadata"]["gatehouse_tenant_id"] == str(customer.tenant_id)
