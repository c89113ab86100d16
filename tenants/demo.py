"""The demo data that `make run` seeds: an operator, a demo tenant with an owner and a key, and 30 days of
synthetic request history so that the dashboards show something. Idempotent; credentials are generated once
and kept in .data/demo-credentials.json (mode 600, never committed)."""

from __future__ import annotations

import json
import os
import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.models import Invoice, InvoiceRun, Plan, PlanAssignment
from billing.periods import period_previous
from billing.plans import plan_pricing_load
from billing.runs import invoice_run_create
from billing.tasks import invoice_run_task
from gateway.catalog.models import CatalogModel
from gateway.keys import ApiKeyError, api_key_authenticate, api_key_create
from gateway.models import RequestRecord
from gateway.pricing import PlanPricing, provider_cost
from tenants.models import Tenant, User
from tenants.services import membership_add, tenant_create

DEMO_SLUG = "demo"
OPERATOR_EMAIL = "operator@example.com"
OWNER_EMAIL = "owner@demo.example.com"
DEVELOPER_EMAIL = "developer@demo.example.com"

HISTORY_DAYS = 45  # covers last month, which the demo's first invoice bills
_HISTORY_MODELS = ["sim/fast", "sim/smart", "sim/code"]


@dataclass(frozen=True)
class DemoSeed:
    tenant: Tenant
    operator_password: str
    owner_password: str
    developer_password: str
    api_key: str


def _credentials_path() -> Path:
    return Path(settings.DATA_DIR) / "demo-credentials.json"


def _load_credentials() -> dict[str, str]:
    path = _credentials_path()
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    return {}


def _save_credentials(credentials: dict[str, str]) -> None:
    path = _credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(credentials, handle, indent=2)


def _ensure_user(email: str, password: str, *, staff: bool = False) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User(email=email, is_staff=staff, is_superuser=staff)
    user.set_password(password)
    user.save()
    return user


def demo_seed() -> DemoSeed:
    credentials = _load_credentials()
    for name in ("operator_password", "owner_password", "developer_password"):
        credentials.setdefault(name, secrets.token_urlsafe(9))
    _ensure_user(OPERATOR_EMAIL, credentials["operator_password"], staff=True)
    owner = _ensure_user(OWNER_EMAIL, credentials["owner_password"])
    developer = _ensure_user(DEVELOPER_EMAIL, credentials["developer_password"])

    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    if tenant is None:
        plan = Plan.objects.filter(slug="starter").first()
        tenant = tenant_create(slug=DEMO_SLUG, name="Demo Inc.", owner_email=owner.email, plan=plan).tenant
        # A customer since before its synthetic history: last month is a whole month to invoice.
        since = timezone.now() - timedelta(days=HISTORY_DAYS)
        Tenant.objects.filter(pk=tenant.pk).update(created_at=since)
        PlanAssignment.objects.filter(tenant=tenant).update(starts_at=since)
        tenant.refresh_from_db()
    membership_add(tenant=tenant, user=developer, role="developer")

    if not _key_is_valid(credentials.get("api_key", ""), tenant):
        credentials["api_key"] = api_key_create(tenant=tenant, name="Demo key (make run)").raw_key
    _save_credentials(credentials)
    with schema_context(tenant.schema_name):
        seeded = RequestRecord.objects.exists()
    if not seeded:
        history = _synthetic_history(days=HISTORY_DAYS, pricing=plan_pricing_load(tenant.plan))
        with schema_context(tenant.schema_name):
            RequestRecord.objects.bulk_create(history)
    _invoice_last_month(tenant)
    return DemoSeed(
        tenant=tenant,
        operator_password=credentials["operator_password"],
        owner_password=credentials["owner_password"],
        developer_password=credentials["developer_password"],
        api_key=credentials["api_key"],
    )


def _key_is_valid(raw_key: str, tenant: Tenant) -> bool:
    try:
        return api_key_authenticate(raw_key).tenant.pk == tenant.pk
    except ApiKeyError:
        return False


def _invoice_last_month(tenant: Tenant) -> None:
    """Queue the demo's invoice for last month (once): the worker runs it against localstripe, whose signed
    webhooks come back to the web process, so the portal and console show a real invoice."""
    period = period_previous(timezone.now())
    queued = InvoiceRun.objects.filter(tenant=tenant, period=period, trigger="demo")
    if queued.exists() or Invoice.objects.filter(tenant=tenant, period=period).exists():
        return
    run = invoice_run_create(period=period, tenant=tenant, trigger="demo")
    transaction.on_commit(lambda: invoice_run_task.apply_async(args=(run.pk,), countdown=5))


def _synthetic_history(*, days: int, pricing: PlanPricing) -> list[RequestRecord]:
    """Requests rated as the gateway rates them (catalogue prices, the tenant's plan)."""
    rng = random.Random(42)  # noqa: S311 - synthetic demo data, not security
    models = {m.name: m.info() for m in CatalogModel.objects.filter(name__in=_HISTORY_MODELS)}
    now = timezone.now()
    records = []
    for day in range(days):
        for _ in range(rng.randint(20, 80)):
            model = models[rng.choice(sorted(models))]
            units = pricing.unit_prices(model)
            input_tokens, output_tokens = rng.randint(50, 3000), rng.randint(20, 800)
            failed = rng.random() < 0.02
            output_tokens = 0 if failed else output_tokens
            records.append(
                RequestRecord(
                    request_id=f"demo-{uuid.UUID(int=rng.getrandbits(128))}",
                    created_at=now - timedelta(days=day, seconds=rng.randint(0, 86_399)),
                    requested_model="auto",
                    served_model=model.name,
                    provider=model.provider,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    provider_cost=provider_cost(model, input_tokens, output_tokens),
                    price=units.amount(input_tokens, output_tokens),
                    unit_input_price=units.input,
                    unit_output_price=units.output,
                    unit_request_price=units.request,
                    latency_ms=rng.randint(150, 4000),
                    ttft_ms=rng.randint(80, 600),
                    http_status=502 if failed else 200,
                    error_class="UpstreamError" if failed else "",
                    stream=rng.random() < 0.6,
                )
            )
    return records
