"""Stripe webhooks: verified, recorded once per event id, applied in a way that order cannot undo.

- The Stripe-Signature header is checked against STRIPE_WEBHOOK_SECRET (HMAC-SHA256 over `t.payload`, with
  a replay tolerance); anything unsigned, mis-signed, stale or malformed is refused and changes nothing.
- Each event id is stored (StripeEvent, unique) in the same transaction as its effect: a re-delivery is a
  no-op, and a crash leaves neither the record nor the effect.
- Out-of-order deliveries: an invoice's status only moves forward (draft -> open -> paid / void /
  uncollectible), so a late `invoice.finalized` or `invoice.payment_failed` never undoes a payment.
- Paid (or voided) invoices reinstate a tenant that unpaid invoices had suspended, once none is overdue.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.grace import tenant_reinstate_if_settled
from billing.invoicing import mirror_update
from billing.models import Invoice, StripeCustomer, StripeEvent

logger = logging.getLogger(__name__)

_RANK = {
    Invoice.Status.PENDING: 0,
    Invoice.Status.RATED: 0,
    Invoice.Status.EMPTY: 0,
    Invoice.Status.DRAFT: 0,
    Invoice.Status.OPEN: 1,
    Invoice.Status.PAID: 2,
    Invoice.Status.VOID: 2,
    Invoice.Status.UNCOLLECTIBLE: 2,
}
_PAID_EVENTS = ("invoice.paid", "invoice.payment_succeeded")


class WebhookRejectedError(Exception):
    """Not a valid Stripe event for us (bad or missing signature, stale, malformed): answer 400."""


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    event_id: str
    type: str
    outcome: str


def webhook_receive(payload: bytes, signature: str) -> WebhookOutcome:
    """Verify, record and apply one delivery. Raises WebhookRejectedError."""
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"),
            signature,
            settings.STRIPE_WEBHOOK_SECRET,
            tolerance=settings.GATEHOUSE_STRIPE_WEBHOOK_TOLERANCE,
        )
        event = json.loads(payload)  # verified: plain dicts from here on
    except stripe.SignatureVerificationError as error:
        raise WebhookRejectedError(f"signature: {error.user_message or 'does not verify'}") from error
    except (ValueError, UnicodeDecodeError) as error:
        raise WebhookRejectedError("the body is not a Stripe event") from error
    if not isinstance(event, dict):
        raise WebhookRejectedError("the body is not a Stripe event")
    event_id, event_type = str(event.get("id") or ""), str(event.get("type") or "")
    wrapper = event.get("data")
    data = wrapper.get("object") if isinstance(wrapper, dict) else None
    created = event.get("created") or 0
    if not event_id or not event_type or not isinstance(data, dict) or not isinstance(created, int):
        raise WebhookRejectedError("the event has no id, type, created or object")
    try:
        with transaction.atomic():
            record = StripeEvent.objects.create(
                event_id=event_id, type=event_type, created=created, object_id=str(data.get("id") or "")[:100]
            )
            outcome = _apply(event_type, data, created)
            record.outcome = outcome[:200]
            record.save(update_fields=["outcome"])
    except IntegrityError:
        return WebhookOutcome(event_id, event_type, "duplicate: already processed")
    logger.info("stripe webhook %s %s: %s", event_id, event_type, outcome)
    return WebhookOutcome(event_id, event_type, outcome)


def _apply(event_type: str, data: Any, created: int) -> str:
    if event_type.startswith("invoice."):
        invoice = _invoice_of(data)
        if invoice is None:
            return "ignored: not one of our invoices"
        return _apply_invoice(event_type, invoice, data, created)
    if event_type == "customer.deleted":
        count = StripeCustomer.objects.filter(customer_id=str(data.get("id"))).update(
            deleted_at=timezone.now()
        )
        return f"customer deleted ({count} tenant)"
    return "recorded"


def _invoice_of(data: Any) -> Invoice | None:
    invoice_id = str(data.get("id") or "")
    invoice = (
        Invoice.objects.select_for_update().filter(stripe_invoice_id=invoice_id).first()
        if invoice_id
        else None
    )
    if invoice is None:
        uid = (data.get("metadata") or {}).get("gatehouse_invoice")
        if uid:
            invoice = Invoice.objects.select_for_update().filter(uid=uid).first()
            if invoice is not None and not invoice.stripe_invoice_id:
                invoice.stripe_invoice_id = invoice_id
                invoice.save(update_fields=["stripe_invoice_id"])
    return invoice


def _apply_invoice(event_type: str, invoice: Invoice, data: Any, created: int) -> str:
    when = datetime.fromtimestamp(created, tz=UTC) if created else timezone.now()
    target = {
        "invoice.finalized": Invoice.Status.OPEN,
        "invoice.paid": Invoice.Status.PAID,
        "invoice.payment_succeeded": Invoice.Status.PAID,
        "invoice.voided": Invoice.Status.VOID,
        "invoice.marked_uncollectible": Invoice.Status.UNCOLLECTIBLE,
    }.get(event_type)
    mirror_update_fields(invoice, data)
    if event_type == "invoice.payment_failed":
        if _RANK[Invoice.Status(invoice.status)] >= 2:
            return f"ignored: invoice already {invoice.status}"
        invoice.payment_failures += 1
        invoice.payment_failed_at = max(filter(None, [invoice.payment_failed_at, when]))
        invoice.save(update_fields=["payment_failures", "payment_failed_at", "updated_at"])
        return f"payment failed ({invoice.payment_failures})"
    if target is None:
        return "recorded"
    if _RANK[target] <= _RANK[Invoice.Status(invoice.status)] and not (
        target == Invoice.Status.OPEN and invoice.status == Invoice.Status.OPEN
    ):
        return f"ignored: invoice already {invoice.status}"
    invoice.status = target
    fields = ["status", "last_event_created", "updated_at"]
    invoice.last_event_created = max(invoice.last_event_created, created)
    if target == Invoice.Status.OPEN and invoice.issued_at is None:
        invoice.issued_at = when
        fields.append("issued_at")
    if target == Invoice.Status.PAID:
        invoice.paid_at = when
        fields.append("paid_at")
    invoice.save(update_fields=fields)
    if target in (Invoice.Status.PAID, Invoice.Status.VOID):
        tenant_id = invoice.tenant_id
        transaction.on_commit(lambda: tenant_reinstate_if_settled(tenant_id))
    return f"invoice {target}"


def mirror_update_fields(invoice: Invoice, data: Any) -> None:
    """Number and hosted page from the event's invoice (status is decided by the event type above)."""
    mirror_update(
        invoice, {"number": data.get("number"), "hosted_invoice_url": data.get("hosted_invoice_url")}
    )
