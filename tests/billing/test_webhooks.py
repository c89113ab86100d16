"""The Stripe webhook endpoint: signatures verified, each event applied once, order cannot undo a payment."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from billing.models import Invoice, StripeCustomer, StripeEvent
from tenants.models import Tenant


def signed(payload: bytes, *, secret: str | None = None, at: int | None = None) -> str:
    """A Stripe-Signature header as Stripe computes it: HMAC-SHA256 of `t.payload`."""
    at = int(time.time()) if at is None else at
    key = (secret or settings.STRIPE_WEBHOOK_SECRET).encode()
    digest = hmac.new(key, f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def event(
    kind: str, obj: dict[str, Any], *, created: int | None = None, event_id: str | None = None
) -> bytes:
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": kind,
            "created": created or int(time.time()),
            "data": {"object": obj},
        }
    ).encode()


def deliver(payload: bytes, signature: str | None = None) -> Any:
    return Client().post(
        "/stripe/webhook",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature if signature is not None else signed(payload),
    )


@pytest.fixture
def invoice(acme: Tenant) -> Invoice:
    return Invoice.objects.create(
        uid=uuid.uuid4(),
        tenant=acme,
        period="2026-08",
        status=Invoice.Status.OPEN,
        total="12.34",
        stripe_invoice_id="in_test_webhooks",
        stripe_customer_id="cus_test",
    )


def invoice_object(invoice: Invoice, **fields: Any) -> dict[str, Any]:
    return {"id": invoice.stripe_invoice_id, "object": "invoice", "customer": "cus_test", **fields}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "signature",
    [
        "",
        "t=1,v1=deadbeef",
        "garbage",
        "WRONG-SECRET",
        "STALE",
    ],
)
def test_a_bad_signature_is_refused_with_400_and_changes_nothing(invoice: Invoice, signature: str) -> None:
    payload = event("invoice.paid", invoice_object(invoice, status="paid"))
    header = {
        "WRONG-SECRET": signed(payload, secret="whsec_not_ours"),
        "STALE": signed(payload, at=int(time.time()) - settings.GATEHOUSE_STRIPE_WEBHOOK_TOLERANCE - 60),
    }.get(signature, signature)

    response = deliver(payload, header)

    assert response.status_code == 400
    assert "error" in response.json()
    assert not StripeEvent.objects.exists()
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.OPEN


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b'{"id": "evt_1"}', b'{"id":"e","type":"x","data":[]}']
)
def test_a_signed_body_that_is_not_an_event_is_a_400(body: bytes) -> None:
    assert deliver(body).status_code == 400
    assert not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_a_redelivered_event_is_applied_once(invoice: Invoice) -> None:
    payload = event("invoice.payment_failed", invoice_object(invoice, status="open"))

    first, again = deliver(payload), deliver(payload)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["outcome"].startswith("duplicate")
    assert Invoice.objects.get(pk=invoice.pk).payment_failures == 1
    assert StripeEvent.objects.count() == 1


@pytest.mark.django_db
def test_events_out_of_order_never_undo_a_payment(invoice: Invoice) -> None:
    now = int(time.time())
    paid = event("invoice.paid", invoice_object(invoice, status="paid"), created=now)
    finalized = event(
        "invoice.finalized",
        invoice_object(
            invoice, status="open", number="GH-0001", hosted_invoice_url="https://pay.example/i/1"
        ),
        created=now - 30,
    )
    failed = event("invoice.payment_failed", invoice_object(invoice, status="open"), created=now - 20)

    for payload in (paid, finalized, failed):
        assert deliver(payload).status_code == 200

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.payment_failures == 0
    assert (invoice.number, invoice.hosted_invoice_url) == (
        "GH-0001",
        "https://pay.example/i/1",
    )  # still copied


@pytest.mark.django_db
def test_payment_failed_then_paid_and_voided_move_forward(invoice: Invoice) -> None:
    deliver(event("invoice.payment_failed", invoice_object(invoice)))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.payment_failures) == (Invoice.Status.OPEN, 1)
    assert invoice.payment_failed_at is not None

    deliver(event("invoice.voided", invoice_object(invoice, status="void")))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOID
    deliver(event("invoice.paid", invoice_object(invoice, status="paid")))
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.VOID  # terminal


@pytest.mark.django_db
def test_an_invoice_found_by_our_metadata_when_its_stripe_id_was_not_saved(invoice: Invoice) -> None:
    Invoice.objects.filter(pk=invoice.pk).update(stripe_invoice_id="")
    payload = event(
        "invoice.paid",
        {"id": "in_adopted", "object": "invoice", "metadata": {"gatehouse_invoice": str(invoice.uid)}},
    )

    assert deliver(payload).status_code == 200

    invoice.refresh_from_db()
    assert (invoice.stripe_invoice_id, invoice.status) == ("in_adopted", Invoice.Status.PAID)


@pytest.mark.django_db
def test_events_for_other_invoices_and_customers_are_recorded_not_applied(
    invoice: Invoice, acme: Tenant
) -> None:
    StripeCustomer.objects.create(tenant=acme, customer_id="cus_test")

    assert deliver(event("invoice.paid", {"id": "in_someone_else", "object": "invoice"})).status_code == 200
    assert deliver(event("customer.updated", {"id": "cus_test", "object": "customer"})).status_code == 200
    assert deliver(event("customer.deleted", {"id": "cus_test", "object": "customer"})).status_code == 200

    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.OPEN
    assert StripeCustomer.objects.get(tenant=acme).deleted_at is not None
    assert list(StripeEvent.objects.order_by("received_at").values_list("outcome", flat=True)) == [
        "ignored: not one of our invoices",
        "recorded",
        "customer deleted (1 tenant)",
    ]


@pytest.mark.django_db
def test_paid_reinstates_a_tenant_suspended_for_that_invoice_only(
    invoice: Invoice, acme: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    Tenant.objects.filter(pk=acme.pk).update(status="suspended", suspension_reason="unpaid invoice 2026-08")
    Invoice.objects.filter(pk=invoice.pk).update(issued_at="2026-09-01T00:00:00Z")
    with django_capture_on_commit_callbacks(execute=True):
        deliver(event("invoice.paid", invoice_object(invoice, status="paid")))
    assert Tenant.objects.get(pk=acme.pk).status == Tenant.Status.ACTIVE


@pytest.mark.django_db
def test_paid_leaves_an_operator_suspension_alone(
    invoice: Invoice, acme: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    Tenant.objects.filter(pk=acme.pk).update(status="suspended", suspension_reason="abuse report #12")
    with django_capture_on_commit_callbacks(execute=True):
        deliver(event("invoice.paid", invoice_object(invoice, status="paid")))
    assert Tenant.objects.get(pk=acme.pk).status == Tenant.Status.SUSPENDED
