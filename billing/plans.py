"""Plans as the rest of the system sees them: a plan's pricing for the hot path, and a tenant's plan history.

A tenant's plan changes take effect at once for new requests (each request is priced with the plan in force
when it arrives); the history (PlanAssignment) prorates base fees, allowances and minimums on the invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing.models import Plan, PlanAssignment
from gateway.invalidation import invalidate_publish
from gateway.pricing import ModelRule, PlanPricing
from tenants.models import Tenant


def plan_pricing_load(plan: Plan) -> PlanPricing:
    """A plan's pricing, with its per-model rules (one query)."""
    rules = {
        row.model_name: ModelRule(
            markup_percent=row.markup_percent if row.rule == row.Rule.MARKUP else None,
            input_price_per_mtok=row.input_price_per_mtok if row.rule == row.Rule.FIXED else None,
            output_price_per_mtok=row.output_price_per_mtok if row.rule == row.Rule.FIXED else None,
        )
        for row in plan.model_prices.all()
    }
    return PlanPricing(
        markup_percent=plan.markup_percent,
        hit_percent=plan.cache_hit_percent,
        rules=rules,
        byok_fee_per_1k_tokens=plan.byok_fee_per_1k_tokens,
        byok_fee_per_request=plan.byok_fee_per_request,
    )


def plan_changed(plan: Plan) -> None:
    """A plan's prices or rules were edited: every web process reloads the principals of its tenants (one
    message, whatever the number of tenants). Called by the save signals of Plan and PlanModelPrice."""
    plan_id = plan.pk
    transaction.on_commit(lambda: invalidate_publish(f"plan:{plan_id}"))


@dataclass(frozen=True, slots=True)
class PlanSpan:
    """A stretch of time during which a tenant was on one plan."""

    plan: Plan
    start: datetime
    end: datetime


@transaction.atomic
def tenant_plan_change(*, tenant: Tenant, plan: Plan, at: datetime | None = None) -> Tenant:
    """Move a tenant to `plan` from `at` (default now): new requests are priced by it at once; the invoice
    prorates the two plans' base fees, allowances and minimums by the time spent on each (docs/BILLING.md)."""
    at = at or timezone.now()
    if plan.currency != tenant.plan.currency:
        # One Stripe customer, one invoice currency: a currency change needs a new customer, by hand.
        raise ValidationError(
            f"{plan.name} bills in {plan.currency.upper()}, the tenant in {tenant.plan.currency.upper()}.",
            code="currency",
        )
    if not PlanAssignment.objects.filter(tenant=tenant).exists():
        PlanAssignment.objects.create(tenant=tenant, plan_id=tenant.plan_id, starts_at=tenant.created_at)
    PlanAssignment.objects.filter(tenant=tenant, starts_at__gte=at).delete()
    PlanAssignment.objects.create(tenant=tenant, plan=plan, starts_at=at)
    tenant.plan = plan
    tenant.save(update_fields=["plan"])
    tenant_id = tenant.pk
    transaction.on_commit(lambda: invalidate_publish(f"tenant:{tenant_id}"))
    return tenant


def plan_spans(tenant: Tenant, start: datetime, end: datetime) -> list[PlanSpan]:
    """The plans a tenant was on within [start, end), clipped to that window and to its creation."""
    assignments = list(
        PlanAssignment.objects.filter(tenant=tenant).select_related("plan").order_by("starts_at")
    )
    if not assignments:
        assignments = [PlanAssignment(tenant=tenant, plan=tenant.plan, starts_at=tenant.created_at)]
    spans = []
    for index, assignment in enumerate(assignments):
        until = assignments[index + 1].starts_at if index + 1 < len(assignments) else end
        lo, hi = max(assignment.starts_at, start), min(until, end)
        if lo < hi:
            spans.append(PlanSpan(plan=assignment.plan, start=lo, end=hi))
    return spans
