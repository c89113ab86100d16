"""The ledger tests' world: a tenant of their own (ledgerco) whose ledger, rollups and invoices are emptied
before each test, the live gateway and simulator, and the proof every test ends with: as many ledger rows as
requests answered, and the month reconciling (ledger = rollups = invoice lines = Stripe) once invoiced."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import stripe
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import schema_context
from pytest_django import DjangoDbBlocker

from billing.invoicing import invoice_tenant_period
from billing.models import Invoice, Plan, RollupCursor, StripeCustomer, UsageRollup
from config.redis import redis_client
from gateway.invalidation import invalidate_publish
from gateway.keys import api_key_create
from gateway.limits.manage import limits_set
from gateway.metering.consumer import usage_consume_once
from gateway.models import ApiKey, RefusalCount, RequestRecord, TenantLimits
from tenants.models import Tenant
from tenants.services import tenant_create
from tests.billing.conftest import localstripe  # noqa: F401
from tests.conftest import World
from tests.gateway.api.conftest import gateway, keys, sim  # noqa: F401


@pytest.fixture(autouse=True)
def _committed(django_db_blocker: DjangoDbBlocker) -> Iterator[None]:
    """Every write of these tests is committed, as in production: the gateway, the consumer and the
    invoice run are other processes or must see each other's rows (the `ledgerco` fixture cleans up)."""
    with django_db_blocker.unblock():
        yield


@dataclass(frozen=True)
class Ledgerco:
    tenant: Tenant
    key: str

    @property
    def schema(self) -> str:
        return str(self.tenant.schema_name)

    @property
    def prefix(self) -> str:
        return str(self.key.split("_")[1])


@pytest.fixture(scope="session")
def ledgerco_tenant(world: World, django_db_blocker: DjangoDbBlocker) -> Ledgerco:
    with django_db_blocker.unblock():
        tenant = tenant_create(
            slug="ledgerco",
            name="Ledger Co",
            owner_email="owner@ledgerco.test",
            owner_password="correct-horse-battery",
            plan=Plan.objects.get(slug="starter"),
        ).tenant
        return Ledgerco(tenant, api_key_create(tenant=tenant, name="ledger").raw_key)


@pytest.fixture
def ledgerco(ledgerco_tenant: Ledgerco) -> Iterator[Ledgerco]:
    """ledgerco with an empty ledger, no rollups, no invoice and the plan's limits (committed)."""
    _reset(ledgerco_tenant.tenant)
    time.sleep(0.15)  # web processes drop the cached principal (limits) on the pub/sub message
    yield ledgerco_tenant
    _reset(ledgerco_tenant.tenant)


def _reset(tenant: Tenant) -> None:
    with schema_context(tenant.schema_name):
        RequestRecord.objects.all().delete()
        RefusalCount.objects.all().delete()
        TenantLimits.objects.all().delete()
        ApiKey.objects.update(
            rpm=None, tpm=None, concurrency=None, monthly_budget=None, monthly_token_cap=None
        )
    UsageRollup.objects.filter(tenant=tenant).delete()
    RollupCursor.objects.filter(tenant=tenant).delete()
    Invoice.objects.filter(tenant=tenant).delete()
    StripeCustomer.objects.filter(tenant=tenant).delete()  # localstripe is emptied per test
    invalidate_publish(f"tenant:{tenant.pk}")


@pytest.fixture
def set_limits(ledgerco: Ledgerco) -> Any:
    def apply(**values: Any) -> None:
        limits_set(tenant=ledgerco.tenant, above_plan=True, **values)
        time.sleep(0.15)

    return apply


@pytest.fixture
def stripe_client(localstripe: str, settings: Any) -> stripe.StripeClient:  # noqa: F811
    settings.STRIPE_API_BASE = localstripe
    settings.GATEHOUSE_STRIPE_LOCALSTRIPE = True
    return stripe.StripeClient(
        settings.STRIPE_API_KEY, base_addresses={"api": localstripe}, max_network_retries=0
    )


def ledger(org: Ledgerco, *, consume: bool = True) -> list[RequestRecord]:
    """Store what is waiting (the consumer, in-process, unless `consume` is off), then the tenant's ledger."""
    if consume:
        usage_consume_once(redis_client(), "ledger-tests")
    with schema_context(org.schema):
        return list(RequestRecord.objects.order_by("created_at"))


def ledger_until(
    org: Ledgerco, rows: int, seconds: float = 20, *, consume: bool = True
) -> list[RequestRecord]:
    """The ledger once it has `rows` rows (or the deadline passed)."""
    deadline = time.monotonic() + seconds
    found = ledger(org, consume=consume)
    while len(found) < rows and time.monotonic() < deadline:
        time.sleep(0.2)
        found = ledger(org, consume=consume)
    return found


def refusals(org: Ledgerco) -> int:
    with schema_context(org.schema):
        return sum(RefusalCount.objects.values_list("count", flat=True))


def assert_reconciles(org: Ledgerco, client: stripe.StripeClient) -> None:
    """Invoice the month so far (through localstripe), then `billing_reconcile` for the tenant: ledger =
    rollups = invoice lines = Stripe, to the cent (the command fails on any difference)."""
    period = timezone.now().strftime("%Y-%m")
    invoice_tenant_period(Tenant.objects.get(pk=org.tenant.pk), period, client=client)
    out = io.StringIO()
    call_command("billing_reconcile", "--period", period, "--tenant", org.tenant.slug, stdout=out)
    assert "1 tenant(s) reconciled" in out.getvalue()
