"""Leak 5: a tenant could set its own key for any endpoint but the simulator, and such requests were priced
at 0, so a server that ignores keys (vLLM, `"api_key": ""`) was free for any tenant that typed 8 characters.
Now tenants' keys are taken only where the operator marks an endpoint BYOK, and BYOK traffic pays the plan's
platform fee."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import stripe
from django.core.exceptions import ValidationError
from django_tenants.utils import schema_context

from billing.models import Plan
from gateway.credentials import credential_set
from gateway.invalidation import invalidate_publish
from gateway.models import ProviderCredential
from tenants.models import Tenant
from tests.gateway.api.conftest import Simulator, chat
from tests.ledger.conftest import Ledgerco, assert_reconciles, ledger_until

HELLO = {"messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 20}
FEE_PER_1K = Decimal("0.01")
FEE_PER_REQUEST = Decimal("0.002")


@pytest.fixture
def byok_plan(ledgerco: Ledgerco, settings: Any) -> Iterator[Plan]:
    """ledgerco on a plan with a BYOK fee, and its own key for the BYOK endpoint `keyless_openai`; this
    process knows the gateway's test endpoints (tests.conftest.gateway_env)."""
    settings.GATEHOUSE_ENDPOINTS = {
        **settings.GATEHOUSE_ENDPOINTS,
        "keyless_openai": {"base_url": "", "api_key": "", "byok": True},
        "keyless_vllm": {"base_url": "", "api_key": ""},
    }
    tenant = Tenant.objects.get(pk=ledgerco.tenant.pk)
    before = tenant.plan
    plan, _ = Plan.objects.update_or_create(
        slug="ledger-byok",
        defaults={
            "name": "Ledger BYOK",
            "byok_fee_per_1k_tokens": FEE_PER_1K,
            "byok_fee_per_request": FEE_PER_REQUEST,
        },
    )
    Tenant.objects.filter(pk=tenant.pk).update(plan=plan)
    with schema_context(ledgerco.schema):
        ProviderCredential.objects.all().delete()
    credential_set(tenant=tenant, endpoint="keyless_openai", api_key="sk-ledgerco-own-0001")
    time.sleep(0.2)
    yield plan
    with schema_context(ledgerco.schema):
        ProviderCredential.objects.all().delete()
    Tenant.objects.filter(pk=tenant.pk).update(plan=before)
    invalidate_publish(f"tenant:{tenant.pk}")
    time.sleep(0.15)


def test_byok_traffic_pays_the_plan_fee_and_a_keyless_server_is_never_free(
    gateway: str,
    ledgerco: Ledgerco,
    sim: Simulator,
    byok_plan: Plan,
    stripe_client: stripe.StripeClient,
) -> None:
    tenant = Tenant.objects.get(pk=ledgerco.tenant.pk)
    with pytest.raises(ValidationError):  # the README's vLLM: no tenant key, however many characters
        credential_set(tenant=tenant, endpoint="keyless_vllm", api_key="any-8-characters")

    own = chat(gateway, ledgerco.key, {**HELLO, "model": "byok/fast"})
    keyless = chat(gateway, ledgerco.key, {**HELLO, "model": "vllm/fast"})

    assert (own.status_code, keyless.status_code) == (200, 200)
    rows = {r.request_id: r for r in ledger_until(ledgerco, 2)}
    assert len(rows) == 2
    byok = rows[own.headers["x-request-id"]]
    tokens = byok.input_tokens + byok.output_tokens
    assert byok.provider_cost == 0  # the provider bills the tenant
    assert byok.price == (Decimal(tokens) / 1000 * FEE_PER_1K + FEE_PER_REQUEST).quantize(Decimal("1e-8"))
    assert byok.unit_request_price == FEE_PER_REQUEST
    served = rows[keyless.headers["x-request-id"]]
    assert served.provider_cost > 0
    assert served.price > served.provider_cost  # catalogue price plus the plan's markup
    assert_reconciles(ledgerco, stripe_client)
