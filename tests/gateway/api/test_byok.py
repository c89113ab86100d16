"""Bring your own key, through the live gateway: a tenant's own key makes a BYOK endpoint's models usable for
it alone, at its plan's BYOK fee (a cache hit: the hit percent of it); a keyless server that takes no tenant
keys serves every tenant at catalogue prices, and a key kept from before an endpoint stopped taking them
changes nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.test import override_settings
from django_tenants.utils import schema_context
from pytest_django import DjangoDbBlocker

from billing.models import Plan
from billing.plans import plan_pricing_load
from config.redis import redis_client
from gateway.cache.manage import cache_settings_set
from gateway.catalog.models import CatalogModel
from gateway.credentials import credential_set
from gateway.crypto import secret_encrypt
from gateway.keys import api_key_create
from gateway.metering.consumer import usage_consume_once
from gateway.models import CacheEntry, ProviderCredential, RequestRecord
from gateway.pricing import UnitPrices, provider_cost
from tenants.models import Tenant
from tenants.services import tenant_create
from tests.conftest import PASSWORD, World
from tests.gateway.api.conftest import Keys, Simulator, chat

BODY = {"model": "byok/fast", "messages": [{"role": "user", "content": "Say hello"}]}
# The gateway process has this endpoint (tests.conftest.gateway_env); so must this one, to store a key.
KEYLESS_OPENAI = {"base_url": "", "api_key": "", "byok": True}


def test_a_tenants_own_key_unlocks_a_provider_for_it_only(
    gateway: str,
    keys: Keys,
    world: World,
    sim: Simulator,
    settings: Any,
    django_db_blocker: pytest.FixtureRequest,
) -> None:
    settings.GATEHOUSE_ENDPOINTS = {**settings.GATEHOUSE_ENDPOINTS, "keyless_openai": KEYLESS_OPENAI}
    before = chat(gateway, keys.globex, BODY)
    assert (before.status_code, before.json()["error"]["code"]) == (400, "model_not_found")

    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        credential_set(
            tenant=Tenant.objects.get(pk=world.globex.pk),
            endpoint="keyless_openai",
            api_key="sk-globex-own-key-0001",
        )
    try:
        deadline = time.monotonic() + 5
        response = chat(gateway, keys.globex, BODY)
        while response.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
            response = chat(gateway, keys.globex, BODY)
        assert response.status_code == 200, response.text
        listed = httpx.get(f"{gateway}/v1/models", headers={"x-api-key": keys.globex}).json()["data"]
        assert "byok/fast" in {m["id"] for m in listed}
        assert chat(gateway, keys.acme, BODY).status_code == 400  # acme has no key of its own

        with django_db_blocker.unblock(), schema_context("t_globex"):  # type: ignore[attr-defined]
            usage_consume_once(redis_client(), "tests")
            record = RequestRecord.objects.get(request_id=response.headers["x-request-id"])
        assert record.output_tokens > 0
        # The provider bills globex; globex's plan charges no BYOK fee.
        assert (record.provider_cost, record.price) == (Decimal(0), Decimal(0))
    finally:
        with django_db_blocker.unblock():  # type: ignore[attr-defined]
            credential_set(
                tenant=Tenant.objects.get(pk=world.globex.pk), endpoint="keyless_openai", api_key=None
            )


def own_record(schema: str, response: httpx.Response) -> RequestRecord:
    assert response.status_code == 200, response.text
    with schema_context(schema):
        usage_consume_once(redis_client(), "tests")
        return RequestRecord.objects.get(request_id=response.headers["x-request-id"])


def catalogue_price(tenant: Tenant, record: RequestRecord) -> tuple[Decimal, Decimal, UnitPrices]:
    """(provider cost, price, unit prices) of `record`'s tokens at vllm/fast's catalogue price + plan."""
    info = CatalogModel.objects.get(name="vllm/fast").info()
    units = plan_pricing_load(Plan.objects.get(pk=tenant.plan_id)).unit_prices(info)
    tokens = record.input_tokens, record.output_tokens
    return provider_cost(info, *tokens), units.amount(*tokens), units


def test_a_keyless_server_that_takes_no_tenant_keys_serves_every_tenant_at_catalogue_prices(
    gateway: str, keys: Keys, world: World, sim: Simulator, settings: Any, django_db_blocker: DjangoDbBlocker
) -> None:
    body = {**BODY, "model": "vllm/fast"}
    settings.GATEHOUSE_ENDPOINTS = {**settings.GATEHOUSE_ENDPOINTS, "keyless_vllm": {"base_url": ""}}
    with django_db_blocker.unblock():
        with pytest.raises(ValidationError, match="does not accept your own keys"):
            credential_set(tenant=world.acme, endpoint="keyless_vllm", api_key="any-8-characters")

        for tenant, key in ((world.acme, keys.acme), (world.globex, keys.globex)):
            record = own_record(tenant.schema_name, chat(gateway, key, body))

            cost, price, units = catalogue_price(tenant, record)
            assert record.output_tokens > 0
            assert (record.provider_cost, record.price) == (cost, price)
            assert price > cost > 0  # the catalogue price plus the plan's markup
            assert (record.unit_input_price, record.unit_output_price) == (units.input, units.output)


def test_a_key_kept_from_before_an_endpoint_stopped_taking_keys_makes_nothing_free(
    gateway: str, keys: Keys, world: World, sim: Simulator, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        # As if globex stored it while keyless_vllm took tenant keys; a new API key makes the gateway load
        # the tenant's state (its keys included) afresh.
        with schema_context(world.globex.schema_name):
            ProviderCredential.objects.create(
                endpoint="keyless_vllm", encrypted_api_key=secret_encrypt("sk-stale-0001"), last_four="0001"
            )
        try:
            fresh = api_key_create(tenant=world.globex, name="after the stale key").raw_key
            record = own_record("t_globex", chat(gateway, fresh, {**BODY, "model": "vllm/fast"}))

            cost, price, _ = catalogue_price(world.globex, record)
            assert (record.provider_cost, record.price) == (cost, price)
            assert price > 0
        finally:
            with schema_context(world.globex.schema_name):
                ProviderCredential.objects.filter(endpoint="keyless_vllm").delete()


FEE_PER_1K, FEE_PER_REQUEST = Decimal("0.0025"), Decimal("0.0007")


@dataclass(frozen=True)
class ByokTenant:
    tenant: Tenant
    key: str


@pytest.fixture(scope="session")
def byok_tenant(world: World, django_db_blocker: DjangoDbBlocker) -> ByokTenant:
    """A tenant of its own on a plan with a BYOK fee, its own key for keyless_openai, and the cache on."""
    with django_db_blocker.unblock():
        plan, _ = Plan.objects.update_or_create(
            slug="byok-fee",
            defaults={
                "name": "BYOK fee",
                "byok_fee_per_1k_tokens": FEE_PER_1K,
                "byok_fee_per_request": FEE_PER_REQUEST,
                "cache_hit_percent": Decimal(10),
            },
        )
        tenant = tenant_create(
            slug="byokco", name="BYOK Co", owner_email="owner@byokco.test", owner_password=PASSWORD, plan=plan
        ).tenant
        endpoints = {**django_settings.GATEHOUSE_ENDPOINTS, "keyless_openai": KEYLESS_OPENAI}
        with override_settings(GATEHOUSE_ENDPOINTS=endpoints):
            credential_set(tenant=tenant, endpoint="keyless_openai", api_key="sk-byokco-own-key-0001")
        cache_settings_set(tenant=tenant, enabled=True, semantic=False)
        return ByokTenant(tenant, api_key_create(tenant=tenant, name="byok tests").raw_key)


def cache_entries(schema: str) -> int:
    with schema_context(schema):
        return CacheEntry.objects.count()


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Whether `check` holds within `seconds` (the gateway writes cache entries after the response)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def fee(record: RequestRecord, percent: Decimal = Decimal(100)) -> Decimal:
    tokens = Decimal(record.input_tokens + record.output_tokens)
    exact = (tokens / 1000 * FEE_PER_1K + FEE_PER_REQUEST) * percent / 100
    return exact.quantize(Decimal("0.00000001"), rounding=ROUND_HALF_UP)


def test_a_request_on_the_tenants_own_key_is_charged_the_plans_byok_fee_and_costs_nothing(
    gateway: str, byok_tenant: ByokTenant, sim: Simulator, django_db_blocker: DjangoDbBlocker
) -> None:
    body = {**BODY, "messages": [{"role": "user", "content": f"Say hello {uuid.uuid4().hex}"}]}

    response = chat(gateway, byok_tenant.key, body)

    with django_db_blocker.unblock():
        record = own_record(byok_tenant.tenant.schema_name, response)
    assert record.input_tokens > 0
    assert record.output_tokens > 0
    assert record.provider_cost == 0
    assert record.price == fee(record) > FEE_PER_REQUEST
    assert (record.unit_input_price, record.unit_output_price, record.unit_request_price) == (
        FEE_PER_1K * 1000,
        FEE_PER_1K * 1000,
        FEE_PER_REQUEST,
    )


def test_a_cache_hit_of_an_answer_made_on_the_tenants_own_key_pays_the_hit_percent_of_the_fee(
    gateway: str, byok_tenant: ByokTenant, sim: Simulator, django_db_blocker: DjangoDbBlocker
) -> None:
    body = {**BODY, "messages": [{"role": "user", "content": f"Say hello {uuid.uuid4().hex}"}]}
    schema = byok_tenant.tenant.schema_name
    with django_db_blocker.unblock():
        before = cache_entries(schema)
        miss = own_record(schema, chat(gateway, byok_tenant.key, body))
        assert eventually(lambda: cache_entries(schema) == before + 1)

        response = chat(gateway, byok_tenant.key, body)

        hit = own_record(schema, response)
    assert response.headers["x-gatehouse-cache"] == "hit-exact"
    assert (hit.input_tokens, hit.output_tokens) == (miss.input_tokens, miss.output_tokens)
    assert hit.provider_cost == miss.provider_cost == 0
    assert (miss.price, hit.price) == (fee(miss), fee(hit, Decimal(10)))
    assert hit.unit_request_price == FEE_PER_REQUEST / 10
