"""Reads for the Limits pages of the portal and the console: what is in force, the plan's defaults, this
month's spend and the budget alerts of one tenant. Every read names the tenant's schema itself, so the
console (public schema) can call them too."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django_tenants.utils import schema_context

from billing.models import BudgetAlert
from gateway.limits.alerts import alert_text
from gateway.limits.manage import BudgetStatus, budget_alerts, budget_status, limits_get
from gateway.limits.policy import LIMIT_FIELDS, plan_limits
from gateway.models import ApiKey, TenantLimits
from tenants.models import Tenant

CENT = Decimal("0.01")
LABELS = {
    "rpm": "Requests per minute",
    "tpm": "Tokens per minute",
    "concurrency": "Requests in flight",
    "monthly_budget": "Monthly budget",
    "monthly_token_cap": "Monthly token cap",
}


def money(amount: Decimal) -> Decimal:
    """Two places, whatever the exponent (the limiter's counters come back normalised: 1.2E+2)."""
    return amount.quantize(CENT)


def limit_display(name: str, value: int | Decimal | None, currency: str) -> str:
    if value is None:
        return "no limit"
    if name == "monthly_budget":
        return f"{money(Decimal(value))} {currency}"
    return f"{int(value):,}"


@dataclass(frozen=True)
class LimitRow:
    name: str
    label: str
    in_force: str
    plan: str
    own: bool  # the tenant's own value, not the plan's default


@dataclass(frozen=True)
class MonthFigures:
    """This month's BudgetStatus as shown: money at two places, token counts grouped."""

    status: BudgetStatus
    spent: Decimal
    reserved: Decimal
    budget: Decimal | None
    tokens: str
    token_cap: str | None


@dataclass(frozen=True)
class KeyLimits:
    key: ApiKey
    limits: dict[str, str]  # this key's own limits, displayed; "" where it has none


@dataclass(frozen=True)
class AlertRow:
    alert: BudgetAlert
    text: str


@dataclass(frozen=True)
class LimitsOverview:
    tenant: Tenant
    currency: str
    rows: list[LimitRow]
    soft_percent: int
    context_overflow: str
    own: dict[str, Any]  # the tenant's own values (None: the plan's), as the limits form's initial data
    month: MonthFigures
    keys: list[KeyLimits]
    alerts: list[AlertRow]


def limits_overview(*, tenant: Tenant) -> LimitsOverview:
    """Everything the Limits page of `tenant` shows."""
    currency = tenant.plan.currency.upper()
    plan = plan_limits(tenant.plan)
    in_force = limits_get(tenant=tenant)
    with schema_context(tenant.schema_name):
        row = TenantLimits.objects.filter(pk=1).first()
        keys = list(ApiKey.objects.filter(revoked_at__isnull=True))
    own = tenant_limits_own(row)
    rows = [
        LimitRow(
            name=name,
            label=LABELS[name],
            in_force=limit_display(name, getattr(in_force, name), currency),
            plan=limit_display(name, getattr(plan, name), currency),
            own=own[name] is not None,
        )
        for name in LIMIT_FIELDS
    ]
    return LimitsOverview(
        tenant=tenant,
        currency=currency,
        rows=rows,
        soft_percent=in_force.soft_percent,
        context_overflow=TenantLimits.ContextOverflow(own["context_overflow"]).label,
        own=own,
        month=month_figures(tenant=tenant),
        keys=[KeyLimits(key=key, limits=key_limits_display(key, currency)) for key in keys],
        alerts=alert_rows(tenant=tenant),
    )


def tenant_limits_own(row: TenantLimits | None) -> dict[str, Any]:
    """The tenant's own settings (a limit of None takes the plan's default)."""
    if row is None:
        return {**dict.fromkeys(LIMIT_FIELDS), "soft_percent": 80, "context_overflow": "refuse"}
    return {name: getattr(row, name) for name in (*LIMIT_FIELDS, "soft_percent", "context_overflow")}


def key_limits_own(key: ApiKey) -> dict[str, Any]:
    return {name: getattr(key, name) for name in LIMIT_FIELDS}


def key_limits_display(key: ApiKey, currency: str) -> dict[str, str]:
    return {
        name: "" if value is None else limit_display(name, value, currency)
        for name, value in key_limits_own(key).items()
    }


def month_figures(*, tenant: Tenant) -> MonthFigures:
    status = budget_status(tenant=tenant)
    return MonthFigures(
        status=status,
        spent=money(status.spent),
        reserved=money(status.reserved),
        budget=None if status.budget is None else money(status.budget),
        tokens=f"{status.tokens:,}",
        token_cap=None if status.token_cap is None else f"{status.token_cap:,}",
    )


def alert_rows(*, tenant: Tenant | None) -> list[AlertRow]:
    """Budget alerts, newest first: one tenant's, or (None) every tenant's."""
    alerts = budget_alerts(tenant=tenant)
    return [AlertRow(alert=alert, text=alert_text(alert)) for alert in alerts]
