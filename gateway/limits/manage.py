"""Setting a tenant's (or one API key's) limits: validated against the plan, applied by every web process
within milliseconds (the principal caches are dropped over pub/sub), and read back for the portal/console."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django_tenants.utils import schema_context

from billing.models import BudgetAlert
from config.redis import redis_client
from gateway.invalidation import invalidate_publish
from gateway.limits.clock import now_ms
from gateway.limits.policy import LIMIT_FIELDS, Limits, key_limits, plan_limits, tenant_limits
from gateway.limits.service import from_units, period_of, scope_keys
from gateway.limits.usage import month_usage
from gateway.models import ApiKey, TenantLimits
from tenants.models import Tenant

UNCHANGED: Any = object()
# What the columns hold (PositiveIntegerField, PositiveBigIntegerField, DecimalField(12, 2)).
MAXIMA: dict[str, int | Decimal] = {
    "rpm": 2**31 - 1,
    "tpm": 2**31 - 1,
    "concurrency": 2**31 - 1,
    "monthly_token_cap": 2**63 - 1,
    "monthly_budget": Decimal("9999999999.99"),
}
OVERFLOW = tuple(TenantLimits.ContextOverflow.values)


def limits_set(
    *,
    tenant: Tenant,
    key_prefix: str | None = None,
    above_plan: bool = False,
    soft_percent: int | None = None,
    context_overflow: str | None = None,
    **values: Any,
) -> Limits:
    """Set some of rpm, tpm, concurrency, monthly_budget, monthly_token_cap (None: back to the plan's default,
    or for a key: no limit of its own). Values above the plan need `above_plan` (operators only).

    Returns the limits now in force for the tenant or the key. Raises ValidationError.
    """
    unknown = set(values) - set(LIMIT_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown limit(s): {', '.join(sorted(unknown))}.")
    plan = plan_limits(tenant.plan)
    for name, value in values.items():
        if value is None:
            continue
        if (name == "monthly_budget" and Decimal(value) < 0) or (name != "monthly_budget" and int(value) < 0):
            raise ValidationError(f"{name} cannot be negative.")
        if value > MAXIMA[name]:
            raise ValidationError(f"{name} {value} is more than the largest value, {MAXIMA[name]}.")
        ceiling = getattr(plan, name)
        if not above_plan and ceiling is not None and value > ceiling:
            raise ValidationError(f"{name} {value} is above the plan's {ceiling} ({tenant.plan.name}).")
    if soft_percent is not None and not 1 <= soft_percent <= 100:
        raise ValidationError("The alert threshold is a percent between 1 and 100.")
    if context_overflow is not None and context_overflow not in OVERFLOW:
        raise ValidationError(f"context_overflow is one of {', '.join(OVERFLOW)}.")
    tenant_id = tenant.pk
    with schema_context(tenant.schema_name), transaction.atomic():
        if key_prefix is not None:
            key = ApiKey.objects.select_for_update().filter(prefix=key_prefix).first()
            if key is None:
                raise ValidationError(f"{tenant.slug} has no API key {key_prefix}.")
            for name, value in values.items():
                setattr(key, name, value)
            if values:
                key.save(update_fields=[*values])
        else:
            row, _ = TenantLimits.objects.select_for_update().get_or_create(pk=1)
            for name, value in values.items():
                setattr(row, name, value)
            if soft_percent is not None:
                row.soft_percent = soft_percent
            if context_overflow is not None:
                row.context_overflow = context_overflow
            row.save()
        transaction.on_commit(lambda: invalidate_publish(f"tenant:{tenant_id}"))
    return limits_get(tenant=tenant, key_prefix=key_prefix)


def limits_get(*, tenant: Tenant, key_prefix: str | None = None) -> Limits:
    """The tenant's limits in force (its own over the plan's), or one key's own. Raises ValidationError for
    an unknown key."""
    with schema_context(tenant.schema_name):
        limits = tenant_limits(tenant.plan, TenantLimits.objects.filter(pk=1).first())
        if key_prefix is None:
            return limits
        key = ApiKey.objects.filter(prefix=key_prefix).first()
        if key is None:
            raise ValidationError(f"{tenant.slug} has no API key {key_prefix}.")
        return key_limits(key, limits.soft_percent)


@dataclass(frozen=True)
class BudgetStatus:
    """Where a scope stands this month: for the portal and the console."""

    period: str
    resets_on: str
    spent: Decimal
    tokens: int
    reserved: Decimal  # held by requests in flight
    budget: Decimal | None
    token_cap: int | None

    @property
    def spent_percent(self) -> int | None:
        return int(self.spent * 100 / self.budget) if self.budget else None

    @property
    def tokens_percent(self) -> int | None:
        return int(self.tokens * 100 / self.token_cap) if self.token_cap else None


def budget_status(*, tenant: Tenant, key_prefix: str = "") -> BudgetStatus:
    """This month's spend and tokens: the limiter's live counters when it has them, else the ledger."""
    now = now_ms()
    period, start, end = period_of(now)
    limits = limits_get(tenant=tenant, key_prefix=key_prefix or None)
    budget_key = scope_keys(tenant.pk, key_prefix, period)[4]
    live: dict[str, str] = {}
    try:
        live = redis_client().hgetall(budget_key)  # type: ignore[assignment]
    except Exception:
        live = {}
    if live:
        spent, tokens, reserved = from_units(live["spent"]), int(live["tokens"]), from_units(live["reserved"])
    else:
        spent, tokens = month_usage(tenant.schema_name, key_prefix, start, end)
        reserved = Decimal(0)
    return BudgetStatus(
        period=period,
        resets_on=end.strftime("%Y-%m-%d"),
        spent=spent,
        tokens=tokens,
        reserved=reserved,
        budget=limits.monthly_budget,
        token_cap=limits.monthly_token_cap,
    )


def budget_alerts(*, tenant: Tenant | None = None, period: str | None = None) -> list[BudgetAlert]:
    """Recorded alerts, newest first: one tenant's (portal) or every tenant's (console)."""
    alerts = BudgetAlert.objects.select_related("tenant__plan")
    if tenant is not None:
        alerts = alerts.filter(tenant=tenant)
    if period is not None:
        alerts = alerts.filter(period=period)
    return list(alerts[:200])
