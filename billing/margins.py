"""The margin: what tenants pay against what providers cost, per tenant and per model, for a period.

Both sides come from the rollups (the ledger summed): provider cost is what each request cost us (nothing
for cache hits and for requests on a tenant's own provider key); usage revenue is what the requests were
charged (for requests on a tenant's own key, its plan's BYOK fee: all margin). A tenant's revenue is its
invoice total once it is rated (base fees, allowances and minimums included), else its usage revenue so far.
Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from billing.models import Invoice, UsageRollup
from billing.periods import period_bounds
from billing.rating import ZERO, cents

_RATED = (Invoice.Status.PENDING,)


@dataclass(frozen=True, slots=True)
class Margin:
    label: str
    requests: int
    provider_cost: Decimal
    usage_revenue: Decimal
    invoiced: Decimal | None = None  # the invoice total, when the period is rated

    @property
    def revenue(self) -> Decimal:
        return self.invoiced if self.invoiced is not None else cents(self.usage_revenue)

    @property
    def margin(self) -> Decimal:
        return self.revenue - cents(self.provider_cost)

    @property
    def margin_percent(self) -> Decimal | None:
        """Margin as a percent of revenue, one decimal; None without revenue."""
        if not self.revenue:
            return None
        return (self.margin * 100 / self.revenue).quantize(Decimal("0.1"))


@dataclass(frozen=True, slots=True)
class PeriodMargins:
    tenants: list[Margin]
    models: list[Margin]
    total: Margin


def period_margins(period: str) -> PeriodMargins:
    """Every tenant's and every model's margin in `period` (two grouped queries and one for invoices)."""
    start, end = period_bounds(period)
    rollups = UsageRollup.objects.filter(day__gte=start.date(), day__lt=end.date())
    sums = {"requests_sum": Sum("requests"), "cost": Sum("provider_cost"), "price_sum": Sum("price")}
    invoiced = dict(
        Invoice.objects.filter(period=period).exclude(status__in=_RATED).values_list("tenant__slug", "total")
    )
    by_tenant = {
        row["tenant__slug"]: row for row in rollups.values("tenant__slug").annotate(**sums).order_by()
    }
    tenants = [
        _margin(slug, by_tenant.get(slug), invoiced.get(slug)) for slug in sorted({*by_tenant, *invoiced})
    ]
    models = [
        _margin(row["model"], row) for row in rollups.values("model").annotate(**sums).order_by("model")
    ]
    total = Margin(
        label="All tenants",
        requests=sum(m.requests for m in tenants),
        provider_cost=sum((m.provider_cost for m in tenants), ZERO),
        usage_revenue=sum((m.usage_revenue for m in tenants), ZERO),
        invoiced=sum((m.revenue for m in tenants), ZERO),
    )
    tenants.sort(key=lambda m: m.margin, reverse=True)
    return PeriodMargins(tenants=tenants, models=models, total=total)


def _margin(label: str, row: dict[str, Any] | None, invoiced: Decimal | None = None) -> Margin:
    if row is None:  # invoiced without usage: fees only
        return Margin(label=label, requests=0, provider_cost=ZERO, usage_revenue=ZERO, invoiced=invoiced)
    return Margin(
        label=label,
        requests=int(row["requests_sum"]),
        provider_cost=row["cost"],
        usage_revenue=row["price_sum"],
        invoiced=invoiced,
    )
