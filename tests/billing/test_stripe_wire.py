"""The invoice flow against real Stripe's wire format (what localstripe cannot show): finalize with
auto_advance, pending items swept by `pending_invoice_items_behavior=include`, Idempotency-Keys on every
write, and the finalized invoice's number, hosted page and time copied to our mirror."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pytest_django import DjangoDbBlocker

from billing.invoicing import invoice_rate, invoice_tenant_period
from billing.models import Invoice, StripeCustomer
from billing.rollups import rollup_period
from billing.stripe_api import StripeRefusedError
from tests.billing.fake_stripe import FakeStripe, client
from tests.billing.shop import Shop, usage_september
from tests.billing.test_invoicing import PERIOD

FLOW = [
    "customer_list_empty",  # an interrupted run's customer?
    "customer_created",
    "invoiceitem_list_empty",  # an interrupted run's items?
    "invoiceitem_created",  # usage $1.50
    "invoiceitem_created",  # included usage -$1.00
    "invoiceitem_created",  # minimum top-up $4.50
    "invoiceitem_retrieved_pending",  # not yet swept into an invoice
    "invoice_list_empty",
    "invoice_created_draft",
    "invoice_retrieved_draft",  # its total is checked before it is finalized
    "invoice_finalized",
]


def rated_invoice(shop: Shop) -> Invoice:
    """September's usage, rated (so that the invoice's uid is known to the fixtures' answers)."""
    usage_september(shop)
    rollup_period(shop.payg, PERIOD)
    return invoice_rate(shop.payg, PERIOD)


@pytest.fixture
def real_stripe(settings: Any) -> None:
    settings.GATEHOUSE_STRIPE_LOCALSTRIPE = False
    settings.STRIPE_API_BASE = ""


def test_the_invoice_flow_speaks_stripes_current_api(
    shop: Shop, real_stripe: None, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        rated = rated_invoice(shop)
        fake = FakeStripe(
            *FLOW, fills={"total": 500, "tenant_id": shop.payg.pk, "invoice_uid": str(rated.uid)}
        )

        invoice = invoice_tenant_period(shop.payg, PERIOD, client=client(fake))

        paths = [(r.method, r.path) for r in fake.requests]
        assert paths == [
            ("GET", "/v1/customers"),
            ("POST", "/v1/customers"),
            ("GET", "/v1/invoiceitems"),
            ("POST", "/v1/invoiceitems"),
            ("POST", "/v1/invoiceitems"),
            ("POST", "/v1/invoiceitems"),
            ("GET", "/v1/invoiceitems/ii_GhWire4"),
            ("GET", "/v1/invoices"),
            ("POST", "/v1/invoices"),
            ("GET", "/v1/invoices/in_GhWireTest01"),
            ("POST", "/v1/invoices/in_GhWireTest01/finalize"),
        ]
        writes = [r for r in fake.requests if r.method == "POST"]
        lines = list(invoice.lines.order_by("position"))
        assert [w.idempotency_key for w in writes] == [
            f"gh-cus-{shop.payg.pk}",
            *(f"gh-ii-{line.uid}" for line in lines),
            f"gh-in-{invoice.uid}",
            f"gh-fin-{invoice.uid}",
        ]
        customer, *items, created, finalized = (w.form for w in writes)
        assert customer == {
            "name": shop.payg.name,
            "email": "owner@bt-payg-co.test",
            "metadata[gatehouse_tenant_id]": str(shop.payg.pk),
            "metadata[gatehouse_tenant_slug]": shop.payg.slug,
        }
        assert [(i["amount"], i["currency"], i["metadata[gatehouse_line]"]) for i in items] == [
            ("150", "usd", str(lines[0].uid)),
            ("-100", "usd", str(lines[1].uid)),
            ("450", "usd", str(lines[2].uid)),
        ]
        assert items[0]["description"].startswith("sim/code: 400,000 input tokens x $1.25/1M")
        assert created == {
            "customer": "cus_GhWireTest01",
            "pending_invoice_items_behavior": "include",
            "description": "Gatehouse usage, 2026-09",
            "metadata[gatehouse_invoice]": str(invoice.uid),
            "metadata[gatehouse_tenant_id]": str(shop.payg.pk),
            "metadata[gatehouse_period]": PERIOD,
        }
        assert finalized == {"auto_advance": "true"}
        assert (invoice.status, invoice.number, invoice.stripe_total_cents) == ("open", "GHWIRE01-0001", 500)
        assert invoice.hosted_invoice_url == "https://invoice.stripe.com/i/acct_1Gh/test_YWNjdF8xR2g"
        assert invoice.issued_at == datetime.fromtimestamp(1790000100, tz=UTC)
        assert StripeCustomer.objects.get(tenant=shop.payg).subscription_id == ""  # no localstripe shim


def test_a_stripe_total_that_differs_from_ours_is_never_finalized(
    shop: Shop, real_stripe: None, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        usage_september(shop)
        fake = FakeStripe(*FLOW[:-1], fills={"total": 499, "tenant_id": shop.payg.pk, "invoice_uid": "x"})

        with pytest.raises(Exception, match="Stripe total 499 cents, ours 500"):
            invoice_tenant_period(shop.payg, PERIOD, client=client(fake))

        invoice = Invoice.objects.get(tenant=shop.payg, period=PERIOD)
        assert invoice.status == Invoice.Status.DRAFT
        assert fake.requests[-1].path == "/v1/invoices/in_GhWireTest01"  # no finalize call


def test_a_refusal_is_not_retried_as_an_outage(
    shop: Shop, real_stripe: None, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        usage_september(shop)
        fake = FakeStripe("customer_list_empty", "meter_event_timestamp_too_old")

        with pytest.raises(StripeRefusedError, match="HTTP 400"):
            invoice_tenant_period(shop.payg, PERIOD, client=client(fake))
