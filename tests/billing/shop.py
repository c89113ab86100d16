"""The billing tests' world: three tenants on three plans since January, and synthetic usage that goes
through the real ledger writer (usage_store) with prices rated exactly as the gateway rates them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django_tenants.utils import schema_context

from billing.models import (
    Invoice,
    InvoiceRun,
    MeterEvent,
    Plan,
    PlanAssignment,
    PlanModelPrice,
    RollupCursor,
    StripeCustomer,
    StripeEvent,
    UsageRollup,
)
from billing.plans import plan_pricing_load
from gateway.catalog.models import CatalogModel
from gateway.metering.events import UsageEvent
from gateway.metering.store import usage_store
from gateway.models import RequestRecord
from gateway.pricing import PlanPricing, UnitPrices, provider_cost
from gateway.routing import ModelInfo
from tenants.models import Tenant
from tenants.services import tenant_create

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
PLAN_OF = {"bt-basic-co": "bt-basic", "bt-pro-co": "bt-pro", "bt-payg-co": "bt-payg"}
PASSWORD = "a-long-unrelated-passphrase-42"


@dataclass(frozen=True)
class Shop:
    basic: Tenant  # $10/month, 20 % markup, cache hits at 10 %
    pro: Tenant  # $100/month, 1M tokens included, sim/smart at a fixed price
    payg: Tenant  # no fee, $1 of usage included, $5 minimum

    @property
    def tenants(self) -> list[Tenant]:
        return [self.basic, self.pro, self.payg]


def shop_create() -> Shop:
    basic, _ = Plan.objects.update_or_create(
        slug="bt-basic",
        defaults={"name": "BT Basic", "monthly_fee": Decimal("10.00"), "markup_percent": Decimal(20)},
    )
    pro, _ = Plan.objects.update_or_create(
        slug="bt-pro",
        defaults={
            "name": "BT Pro",
            "monthly_fee": Decimal("100.00"),
            "markup_percent": Decimal(10),
            "included_tokens": 1_000_000,
        },
    )
    PlanModelPrice.objects.update_or_create(
        plan=pro,
        model_name="sim/smart",
        defaults={
            "rule": PlanModelPrice.Rule.FIXED,
            "input_price_per_mtok": Decimal("3.00"),
            "output_price_per_mtok": Decimal("12.00"),
        },
    )
    payg, _ = Plan.objects.update_or_create(
        slug="bt-payg",
        defaults={
            "name": "BT Pay as you go",
            "monthly_fee": Decimal("0.00"),
            "markup_percent": Decimal(25),
            "included_amount": Decimal("1.00"),
            "minimum_monthly_charge": Decimal("5.00"),
        },
    )
    tenants = []
    for slug, plan in zip(PLAN_OF, (basic, pro, payg), strict=True):
        tenant = tenant_create(
            slug=slug, name=slug.title(), owner_email=f"owner@{slug}.test", owner_password=PASSWORD, plan=plan
        ).tenant
        Tenant.objects.filter(pk=tenant.pk).update(created_at=SINCE)
        PlanAssignment.objects.filter(tenant=tenant).update(starts_at=SINCE)
        tenants.append(Tenant.objects.get(pk=tenant.pk))
    return Shop(*tenants)


def shop_reset(shop: Shop) -> None:
    """Forget every billing fact and ledger row of the shop's tenants (their plans go back to the start)."""
    for tenant in shop.tenants:
        Invoice.objects.filter(tenant=tenant).delete()
        InvoiceRun.objects.filter(tenant=tenant).delete()
        for model in (UsageRollup, RollupCursor, StripeCustomer, MeterEvent):
            model.objects.filter(tenant=tenant).delete()
        with schema_context(tenant.schema_name):
            RequestRecord.objects.all().delete()
        plan = Plan.objects.get(slug=PLAN_OF[tenant.slug])
        PlanAssignment.objects.filter(tenant=tenant).delete()
        PlanAssignment.objects.create(tenant=tenant, plan=plan, starts_at=SINCE)
        active = {"status": Tenant.Status.ACTIVE, "suspension_reason": "", "suspended_at": None}
        Tenant.objects.filter(pk=tenant.pk).update(plan=plan, created_at=SINCE, **active)
    InvoiceRun.objects.filter(tenant__isnull=True).delete()
    StripeEvent.objects.all().delete()


def model_info(name: str) -> ModelInfo:
    return CatalogModel.objects.get(name=name).info()


def usage_add(
    tenant: Tenant,
    when: datetime,
    model: str,
    input_tokens: int,
    output_tokens: int,
    *,
    hit: bool = False,
    count: int = 1,
    pricing: PlanPricing | None = None,
    http_status: int = 200,
    units: UnitPrices | None = None,
) -> list[UsageEvent]:
    """Record `count` requests as the gateway would (rated with the tenant's plan unless `pricing`); with
    `units`, as a request on the tenant's own provider key rated at those unit prices (no provider cost)."""
    info = model_info(model)
    pricing = pricing or plan_pricing_load(Plan.objects.get(pk=tenant.plan_id))
    cost = provider_cost(info, input_tokens, output_tokens) if units is None else Decimal(0)
    units = units or pricing.unit_prices(info)
    if hit:
        units, cost = units.percent(pricing.hit_percent), Decimal(0)
    events = [
        UsageEvent(
            request_id=f"bt-{uuid.uuid4().hex}",
            tenant_schema=tenant.schema_name,
            tenant_id=tenant.pk,
            api_key_prefix="",
            created_ms=int(when.timestamp() * 1000),
            requested_model=model,
            served_model=model,
            provider=info.provider,
            task_type="",
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            tokens_estimated=False,
            provider_cost=cost,
            price=units.amount(input_tokens, output_tokens),
            unit_input_price=units.input,
            unit_output_price=units.output,
            unit_request_price=units.request,
            latency_ms=5,
            ttft_ms=None,
            cache_status="hit-exact" if hit else "miss",
            http_status=http_status,
            error_class="",
            stream=False,
        )
        for _ in range(count)
    ]
    usage_store(events)
    return events


def usage_september(shop: Shop) -> None:
    """The usage the end-to-end tests bill: 2026-09, several models, days, a cache hit, a failed request."""
    day = datetime(2026, 9, 3, 10, tzinfo=UTC)
    late = datetime(2026, 9, 30, 23, 59, 59, tzinfo=UTC)
    usage_add(shop.basic, day, "sim/fast", 120_000, 30_000, count=3)
    usage_add(shop.basic, late, "sim/smart", 100_000, 20_000, count=2)
    usage_add(shop.basic, day, "sim/fast", 120_000, 30_000, hit=True)
    usage_add(shop.basic, day, "sim/fast", 0, 0, http_status=502)
    usage_add(shop.pro, day, "sim/smart", 400_000, 100_000, count=3)
    usage_add(shop.pro, late, "sim/fast", 50_000, 10_000)
    usage_add(shop.payg, day, "sim/code", 100_000, 50_000, count=4)
