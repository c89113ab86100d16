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
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.models import Plan
from gateway.keys import ApiKeyError, api_key_authenticate, api_key_create
from gateway.models import RequestRecord
from tenants.models import Tenant, User
from tenants.services import membership_add, tenant_create

DEMO_SLUG = "demo"
OPERATOR_EMAIL = "operator@example.com"
OWNER_EMAIL = "owner@demo.example.com"
DEVELOPER_EMAIL = "developer@demo.example.com"

# (model, provider, input $/1M, output $/1M): synthetic history only; the catalogue arrives with the gateway.
_HISTORY_MODELS = [
    ("sim/fast", "simulator", Decimal("0.15"), Decimal("0.60")),
    ("sim/smart", "simulator", Decimal("2.50"), Decimal("10.00")),
    ("sim/code", "simulator", Decimal("1.10"), Decimal("4.40")),
]
_MARKUP = Decimal("1.25")
_PER_MILLION = Decimal(1_000_000)


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
    membership_add(tenant=tenant, user=developer, role="developer")

    if not _key_is_valid(credentials.get("api_key", ""), tenant):
        credentials["api_key"] = api_key_create(tenant=tenant, name="Demo key (make run)").raw_key
    _save_credentials(credentials)
    with schema_context(tenant.schema_name):
        if not RequestRecord.objects.exists():
            RequestRecord.objects.bulk_create(_synthetic_history(days=30))
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


def _synthetic_history(*, days: int) -> list[RequestRecord]:
    rng = random.Random(42)  # noqa: S311 - synthetic demo data, not security
    now = timezone.now()
    records = []
    for day in range(days):
        for _ in range(rng.randint(20, 80)):
            model, provider, in_price, out_price = rng.choice(_HISTORY_MODELS)
            input_tokens, output_tokens = rng.randint(50, 3000), rng.randint(20, 800)
            cost = (input_tokens * in_price + output_tokens * out_price) / _PER_MILLION
            failed = rng.random() < 0.02
            records.append(
                RequestRecord(
                    request_id=f"demo-{uuid.UUID(int=rng.getrandbits(128))}",
                    created_at=now - timedelta(days=day, seconds=rng.randint(0, 86_399)),
                    requested_model="auto",
                    served_model=model,
                    provider=provider,
                    input_tokens=input_tokens,
                    output_tokens=0 if failed else output_tokens,
                    provider_cost=Decimal(0) if failed else cost,
                    price=Decimal(0) if failed else cost * _MARKUP,
                    latency_ms=rng.randint(150, 4000),
                    ttft_ms=rng.randint(80, 600),
                    http_status=502 if failed else 200,
                    error_class="UpstreamError" if failed else "",
                    stream=rng.random() < 0.6,
                )
            )
    return records
