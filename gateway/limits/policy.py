"""The limits the hot path enforces, as it holds them (loaded with the API key's principal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billing.models import Plan
    from gateway.models import ApiKey, TenantLimits

LIMIT_FIELDS = ("rpm", "tpm", "concurrency", "monthly_budget", "monthly_token_cap")


@dataclass(frozen=True, slots=True)
class Limits:
    """One scope's limits (a tenant, or one API key); None means no limit of that kind."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    monthly_budget: Decimal | None = None  # in the plan's currency, of what the tenant is charged
    monthly_token_cap: int | None = None
    soft_percent: int = 80

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in LIMIT_FIELDS)


@dataclass(frozen=True, slots=True)
class LimitSet:
    """What applies to a request: its tenant's limits and its key's own (both must admit it)."""

    tenant: Limits = field(default_factory=Limits)
    key: Limits = field(default_factory=Limits)
    context_overflow: str = "refuse"  # or "truncate"


def plan_limits(plan: Plan) -> Limits:
    return Limits(
        rpm=plan.default_rpm,
        tpm=plan.default_tpm,
        concurrency=plan.default_concurrency,
        monthly_budget=plan.default_monthly_budget,
        monthly_token_cap=plan.default_monthly_token_cap,
    )


def tenant_limits(plan: Plan, row: TenantLimits | None) -> Limits:
    """A tenant's limits in force: its own values (`row`, if it saved any) over the plan's defaults."""
    defaults = plan_limits(plan)
    own = {n: getattr(row, n) for n in LIMIT_FIELDS if row is not None and getattr(row, n) is not None}
    return Limits(
        **{**{n: getattr(defaults, n) for n in LIMIT_FIELDS}, **own},
        soft_percent=row.soft_percent if row else 80,
    )


def key_limits(api_key: ApiKey, soft_percent: int) -> Limits:
    """An API key's own limits (None where it has none), alerting at its tenant's threshold."""
    return Limits(**{name: getattr(api_key, name) for name in LIMIT_FIELDS}, soft_percent=soft_percent)


def limit_set_load(plan: Plan, api_key: ApiKey) -> LimitSet:
    """The current schema's limits: its TenantLimits row over the plan's defaults, and the key's own."""
    from gateway.models import TenantLimits

    row = TenantLimits.objects.filter(pk=1).first()
    tenant = tenant_limits(plan, row)
    return LimitSet(
        tenant=tenant,
        key=key_limits(api_key, tenant.soft_percent),
        context_overflow=row.context_overflow if row else "refuse",
    )
