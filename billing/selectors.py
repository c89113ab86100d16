"""Reads of billing facts for the portal and the console: a tenant's month so far and its invoices, and the
operator's lists (runs, a period's invoices, failed payments, plans). Nothing here writes; the portal brings
the rollups up to date (billing.rollups.rollup_pending) before it reads them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Case, Count, DecimalField, Exists, F, OuterRef, Q, QuerySet, Sum, When
from django.db.models.functions import Coalesce

from billing.grace import REASON_PREFIX, UNPAID, overdue_invoices
from billing.models import Invoice, InvoiceLine, InvoiceRun, Plan, UsageRollup
from billing.periods import period_bounds, period_of, period_tenants
from billing.rating import MILLION, MISS, ZERO, Rating, cents, period_rate
from tenants.models import Tenant

USAGE_KINDS = (InvoiceLine.Kind.USAGE, InvoiceLine.Kind.CACHE_HITS)
PACE_WINDOW_MIN = 24 * 3600  # seconds: the shortest stretch a pace is measured over


@dataclass(frozen=True)
class ModelUsage:
    """One model's usage in a period, from the rollups: its amount is tokens x unit prices per 1M."""

    model: str
    requests: int
    cache_hits: int
    input_tokens: int
    output_tokens: int
    amount: Decimal


def usage_by_model(*, tenant: Tenant, period: str) -> list[ModelUsage]:
    """The tenant's usage in `period` per model, by name (one query)."""
    start, end = period_bounds(period)
    # As billing.rating.usage_exact rates a line, per 1M tokens: rows without unit prices (stored before they
    # were kept) at the price their records were charged.
    per_million = Case(
        When(unit_input_price=0, unit_output_price=0, unit_request_price=0, then=F("price") * MILLION),
        default=F("input_tokens") * F("unit_input_price")
        + F("output_tokens") * F("unit_output_price")
        + F("requests") * F("unit_request_price") * MILLION,
    )
    exact = Sum(per_million, output_field=DecimalField(max_digits=40, decimal_places=14))
    rows = (
        UsageRollup.objects.filter(tenant=tenant, day__gte=start.date(), day__lt=end.date())
        .values("model")
        .annotate(
            total_requests=Sum("requests"),
            hits=Coalesce(Sum("requests", filter=~Q(cache_status=MISS)), 0),
            total_input=Sum("input_tokens"),
            total_output=Sum("output_tokens"),
            exact=exact,
        )
        .order_by("model")
    )
    return [
        ModelUsage(
            model=row["model"],
            requests=row["total_requests"],
            cache_hits=row["hits"],
            input_tokens=row["total_input"],
            output_tokens=row["total_output"],
            amount=cents(row["exact"] / MILLION),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class MonthEstimate:
    """A period in progress: the invoice as it would be with the usage so far, and a projection."""

    period: str
    rating: Rating
    usage: Decimal  # the usage lines of `rating`
    since: datetime  # the start of the month, or the tenant's if later: the pace is measured from there
    elapsed: Decimal  # share of [since, end of the month) gone by, 0 to 1
    projected: Decimal


def month_estimate(*, tenant: Tenant, now: datetime) -> MonthEstimate:
    """The invoice of `now`'s period so far (the whole month's fees, the usage the rollups hold) and what it
    comes to if usage goes on at the same pace until the end of the month (`pace_projection`)."""
    period = period_of(now)
    start, end = period_bounds(period)
    rating = period_rate(tenant, period)
    since = max(start, tenant.created_at)
    elapsed = elapsed_share(since=since, end=end, now=now)
    return MonthEstimate(
        period=period,
        rating=rating,
        usage=cents(usage_total(rating)),
        since=since,
        elapsed=elapsed,
        projected=pace_projection(rating=rating, elapsed=elapsed),
    )


def usage_total(rating: Rating) -> Decimal:
    return sum((line.amount for line in rating.lines if line.kind in USAGE_KINDS), ZERO)


def elapsed_share(*, since: datetime, end: datetime, now: datetime) -> Decimal:
    """How much of [since, end) has gone by at `now`, from 0 to 1 (to the second), counting at least a day
    gone: a pace measured over a new tenant's first minutes would project nonsense."""
    total = int((end - since).total_seconds())
    gone = max(int((now - since).total_seconds()), PACE_WINDOW_MIN)
    if total <= 0 or gone >= total:
        return Decimal(1)
    return Decimal(gone) / Decimal(total)


def pace_projection(*, rating: Rating, elapsed: Decimal) -> Decimal:
    """The invoice at the end of the month if usage goes on at its pace so far:

        so far - minimum top-up + usage so far x (1 - elapsed) / elapsed, and never less than so far.

    Fees are already the whole month's in `rating`. The allowance credit stays what the usage so far used of
    it (the rest of the month is counted in full: an overestimate while allowance is left), and the minimum
    charge still applies (the "never less than so far" part). Nothing elapsed yet: the invoice so far."""
    if elapsed <= 0:
        return cents(rating.total)
    topup = sum((line.amount for line in rating.lines if line.kind == InvoiceLine.Kind.MINIMUM), ZERO)
    extra = usage_total(rating) * (1 - elapsed) / elapsed
    return cents(max(rating.total, rating.total - topup + extra))


def invoice_list_for_tenant(*, tenant: Tenant) -> QuerySet[Invoice]:
    """The tenant's invoices, newest period first."""
    return Invoice.objects.filter(tenant=tenant).order_by("-period")


def invoice_get_for_tenant(*, tenant: Tenant, uid: uuid.UUID) -> Invoice:
    """One of the tenant's own invoices with its lines. Raises Invoice.DoesNotExist for any other uid,
    another tenant's included: callers answer 404 and nothing tells the two apart."""
    return Invoice.objects.prefetch_related("lines").get(tenant=tenant, uid=uid)


def billing_suspended(tenant: Tenant) -> bool:
    """Suspended by billing.grace for an unpaid invoice (not by an operator)."""
    return not tenant.is_active and tenant.suspension_reason.startswith(REASON_PREFIX)


def invoices_unpaid(*, tenant: Tenant) -> QuerySet[Invoice]:
    """The tenant's issued invoices still to be paid, oldest first."""
    return Invoice.objects.filter(tenant=tenant, status__in=UNPAID).order_by("issued_at", "period")


def invoice_run_list(*, limit: int = 50) -> list[InvoiceRun]:
    """The latest invoice runs, newest first."""
    return list(InvoiceRun.objects.select_related("tenant").order_by("-created_at")[:limit])


@dataclass(frozen=True)
class PeriodRow:
    tenant: Tenant
    invoice: Invoice | None  # None: no invoice for the period (yet)


NO_INVOICE = "none"


def period_invoice_rows(*, period: str, status: str = "") -> list[PeriodRow]:
    """Every tenant an all-tenants run bills for `period` (those that existed before it ended) and any other
    with an invoice for it, with that invoice, by slug; `status` keeps one status (NO_INVOICE: none yet)."""
    invoices = {invoice.tenant_id: invoice for invoice in Invoice.objects.filter(period=period)}
    billed = period_tenants(period).values("pk")
    tenants = Tenant.objects.filter(Q(pk__in=billed) | Q(pk__in=invoices)).order_by("slug")
    rows = [PeriodRow(tenant=tenant, invoice=invoices.get(tenant.pk)) for tenant in tenants]
    if status == NO_INVOICE:
        return [row for row in rows if row.invoice is None]
    if status:
        return [row for row in rows if row.invoice is not None and row.invoice.status == status]
    return rows


def invoices_failed(*, now: datetime | None = None) -> QuerySet[Invoice]:
    """Invoices whose payment failed at least once, or issued and unpaid past the grace period (`overdue`
    says which); newest first."""
    overdue = overdue_invoices(now).filter(pk=OuterRef("pk"))
    return (
        Invoice.objects.annotate(overdue=Exists(overdue))
        .filter(Q(payment_failures__gt=0) | Q(overdue=True))
        .select_related("tenant")
        .order_by(F("issued_at").desc(nulls_last=True), "-period", "tenant__slug")
    )


def plan_list() -> QuerySet[Plan]:
    """Every plan with how many tenants are on it and how many per-model prices it has."""
    return Plan.objects.annotate(
        tenant_count=Count("tenants", distinct=True), price_count=Count("model_prices", distinct=True)
    ).order_by("monthly_fee", "name")
