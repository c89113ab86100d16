"""One tenant's invoice for one period, from its ledger to a Stripe invoice: every step idempotent.

Steps (each re-entrant; a run killed anywhere and started again ends with exactly one correct invoice):
1. Rollups of the whole period recomputed from the ledger (billing.rollups).
2. Rating (billing.rating), once: the Invoice row (unique per tenant and period) and its lines are written in
   one transaction; once written they are never recomputed, so what is pushed to Stripe never changes.
3. The tenant's Stripe customer, found (an interrupted run's) or created.
4. One invoice item per line, each created at most once: our line id is in its metadata and its
   idempotency key, and the customer's existing items are adopted before anything is created.
5. The Stripe invoice (pending items swept in), found by our invoice id in its metadata or created; its
   total is checked against ours to the cent before it is finalized.
6. Finalized (Stripe numbers, hosts and collects it); webhooks then keep our mirror's status current.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import stripe_api
from billing.models import Invoice, InvoiceLine, InvoiceRun, StripeCustomer
from billing.rating import period_rate
from billing.rollups import rollup_period
from tenants.models import Membership, Tenant

logger = logging.getLogger(__name__)


class InvoiceMismatchError(Exception):
    """Stripe's invoice total differs from ours: left as a draft for a person to look at."""


def invoice_tenant_period(
    tenant: Tenant, period: str, *, run: InvoiceRun | None = None, client: stripe.StripeClient | None = None
) -> Invoice:
    """Bring `tenant`'s invoice for `period` as far as it can go; safe to call any number of times."""
    invoice = Invoice.objects.filter(tenant=tenant, period=period).first()
    if invoice is None or invoice.status == Invoice.Status.PENDING:
        rollup_period(tenant, period)
        invoice = invoice_rate(tenant, period, run=run)
    if invoice.status in (Invoice.Status.EMPTY, *_ISSUED):
        return invoice
    client = client or stripe_api.stripe_client()
    customer_id = customer_ensure(tenant, client, currency=invoice.currency)
    if settings.GATEHOUSE_BILLING_MODE == "meters":
        return invoice  # Stripe invoices through the meter (billing.meters); ours is the reference
    if not invoice.stripe_invoice_id:
        _items_push(invoice, customer_id, client)
        _invoice_create(invoice, customer_id, client)
    if invoice.status == Invoice.Status.DRAFT:
        _invoice_issue(invoice, client)
    return invoice


_ISSUED = (Invoice.Status.OPEN, Invoice.Status.PAID, Invoice.Status.VOID, Invoice.Status.UNCOLLECTIBLE)


def invoice_rate(tenant: Tenant, period: str, *, run: InvoiceRun | None = None) -> Invoice:
    """Write the invoice's lines once (rollups must be current); a concurrent writer's lines win."""
    rating = period_rate(tenant, period)
    try:
        with transaction.atomic():
            invoice, _ = Invoice.objects.select_for_update().get_or_create(
                tenant=tenant, period=period, defaults={"uid": uuid.uuid4(), "run": run}
            )
            if invoice.status != Invoice.Status.PENDING:
                return invoice
            InvoiceLine.objects.bulk_create(
                InvoiceLine(
                    uid=uuid.uuid4(),
                    invoice=invoice,
                    position=position,
                    kind=line.kind,
                    description=line.description[:500],
                    model=line.model,
                    requests=line.requests,
                    input_tokens=line.input_tokens,
                    output_tokens=line.output_tokens,
                    unit_input_price=line.unit_input_price,
                    unit_output_price=line.unit_output_price,
                    unit_request_price=line.unit_request_price,
                    exact_amount=line.exact_amount,
                    amount=line.amount,
                )
                for position, line in enumerate(rating.lines, start=1)
            )
            invoice.currency = rating.currency
            invoice.total = rating.total
            invoice.status = Invoice.Status.RATED if rating.total > 0 else Invoice.Status.EMPTY
            invoice.run = run or invoice.run
            invoice.save(update_fields=["currency", "total", "status", "run", "updated_at"])
            return invoice
    except IntegrityError:  # another process created the row first: use its lines
        return Invoice.objects.get(tenant=tenant, period=period)


def customer_ensure(tenant: Tenant, client: stripe.StripeClient, *, currency: str = "usd") -> str:
    """The tenant's Stripe customer id: ours, or one an interrupted run created, or a new one."""
    known = StripeCustomer.objects.filter(tenant=tenant, deleted_at__isnull=True).first()
    if known is not None:
        return known.customer_id
    email = billing_email(tenant)
    customer_id = stripe_api.customer_find(client, email=email, tenant_id=tenant.pk)
    if customer_id is None:
        customer_id = stripe_api.customer_create(
            client, tenant_id=tenant.pk, slug=tenant.slug, name=tenant.name, email=email
        )
    subscription_id = ""
    if settings.GATEHOUSE_STRIPE_LOCALSTRIPE:
        subscription_id = stripe_api.localstripe_subscription(client, customer_id, currency)
    StripeCustomer.objects.update_or_create(
        tenant=tenant,
        defaults={"customer_id": customer_id, "subscription_id": subscription_id, "deleted_at": None},
    )
    return customer_id


def customers_ensure() -> int:
    """A Stripe customer for every tenant without one (meters mode needs them before usage is reported)."""
    missing = Tenant.objects.exclude(schema_name="public").exclude(
        pk__in=StripeCustomer.objects.filter(deleted_at__isnull=True).values("tenant_id")
    )
    client = stripe_api.stripe_client()
    created = 0
    for tenant in missing.order_by("pk"):
        customer_ensure(tenant, client, currency=tenant.plan.currency)
        created += 1
    return created


def billing_email(tenant: Tenant) -> str:
    """Where Stripe sends the tenant's invoices: its first owner's address."""
    owner = (
        Membership.objects.filter(tenant=tenant, role=Membership.Role.OWNER)
        .select_related("user")
        .order_by("created_at")
        .first()
    )
    return owner.user.email if owner else f"billing+{tenant.slug}@{settings.GATEHOUSE_BASE_DOMAIN}"


def _items_push(invoice: Invoice, customer_id: str, client: stripe.StripeClient) -> None:
    lines = [line for line in invoice.lines.all() if line.amount_cents and not line.stripe_invoice_item_id]
    if not lines:
        return
    existing = stripe_api.invoice_items_find(client, customer_id)
    for line in lines:
        item_id = existing.get(str(line.uid)) or stripe_api.invoice_item_create(
            client,
            customer_id=customer_id,
            line_uid=str(line.uid),
            invoice_uid=str(invoice.uid),
            amount_cents=line.amount_cents,
            currency=invoice.currency,
            description=line.description,
        )
        InvoiceLine.objects.filter(pk=line.pk).update(stripe_invoice_item_id=item_id)


def _invoice_create(invoice: Invoice, customer_id: str, client: stripe.StripeClient) -> None:
    pushed = invoice.lines.exclude(stripe_invoice_item_id="").values_list("stripe_invoice_item_id", flat=True)
    swept_into = stripe_api.invoice_of_item(client, pushed[0]) if pushed else None
    found = (
        stripe_api.invoice_retrieve(client, swept_into)
        if swept_into
        else stripe_api.invoice_find(client, customer_id, str(invoice.uid))
    )
    created = found or stripe_api.invoice_create(
        client,
        customer_id=customer_id,
        invoice_uid=str(invoice.uid),
        tenant_id=invoice.tenant_id,
        period=invoice.period,
    )
    invoice.stripe_invoice_id = str(created["id"])
    invoice.stripe_customer_id = customer_id
    invoice.stripe_total_cents = int(created.get("total") or 0)
    invoice.status = Invoice.Status.DRAFT
    invoice.save(update_fields=["stripe_invoice_id", "stripe_customer_id", "stripe_total_cents", "status"])
    mirror_update(invoice, created)


def _invoice_issue(invoice: Invoice, client: stripe.StripeClient) -> None:
    """Check Stripe's total against ours, then finalize (or, on localstripe, issue the draft as it is)."""
    remote = stripe_api.invoice_retrieve(client, invoice.stripe_invoice_id)
    stripe_total = int(remote.get("total") or 0)
    Invoice.objects.filter(pk=invoice.pk).update(stripe_total_cents=stripe_total)
    if stripe_total != invoice.total_cents:
        raise InvoiceMismatchError(
            f"invoice {invoice.uid}: Stripe total {stripe_total} cents, ours {invoice.total_cents}"
        )
    if remote.get("status") == "draft" and not settings.GATEHOUSE_STRIPE_LOCALSTRIPE:
        remote = stripe_api.invoice_finalize(client, invoice.stripe_invoice_id, str(invoice.uid))
    invoice.issued_at = _stamp(remote, "finalized_at") or timezone.now()
    invoice.status = Invoice.Status.OPEN
    invoice.save(update_fields=["issued_at", "status", "updated_at"])
    mirror_update(invoice, remote)


def mirror_update(invoice: Invoice, remote: Any) -> None:
    """Copy what Stripe says about an invoice that we show: its number, hosted page, total, status."""
    changed = []
    for field, value in (
        ("number", remote.get("number") or ""),
        ("hosted_invoice_url", remote.get("hosted_invoice_url") or ""),
    ):
        if value and getattr(invoice, field) != value:
            setattr(invoice, field, value)
            changed.append(field)
    status = remote.get("status")
    if status in ("paid", "void", "uncollectible") and invoice.status != status:
        invoice.status = status
        changed.append("status")
        if status == "paid" and invoice.paid_at is None:
            invoice.paid_at = _stamp(remote, "paid_at") or timezone.now()
            changed.append("paid_at")
    if changed:
        invoice.save(update_fields=[*changed, "updated_at"])


def _stamp(remote: Any, name: str) -> datetime | None:
    transitions = remote.get("status_transitions") or {}
    value = transitions.get(name)
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None
