"""Bring your own key, through the live gateway: a tenant's own key makes a BYOK endpoint's models usable for
it alone; a keyless server that takes no tenant keys serves every tenant at catalogue prices, and a key kept
from before an endpoint stopped taking them changes nothing."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import schema_context
from pytest_django import DjangoDbBlocker

from billing.models import Plan
from billing.plans import plan_pricing_load
from config.redis import redis_client
from gateway.catalog.models import CatalogModel
from gateway.credentials import credential_set
from gateway.crypto import secret_encrypt
from gateway.keys import api_key_create
from gateway.metering.consumer import usage_consume_once
from gateway.models import ProviderCredential, RequestRecord
from gateway.pricing import UnitPrices, provider_cost
from tenants.models import Tenant
from tests.conftest import World
from tests.gateway.api.conftest import Keys, Simulator, chat

BODY = {"model": "byok/fast", "messages": [{"role": "user", "content": "Say hello"}]}


def test_a_tenants_own_key_unlocks_a_provider_for_it_only(
    gateway: str,
    keys: Keys,
    world: World,
    sim: Simulator,
    settings: Any,
    django_db_blocker: pytest.FixtureRequest,
) -> None:
    # The gateway process has this endpoint (tests.conftest.gateway_env); so must this one, to store a key.
    settings.GATEHOUSE_ENDPOINTS = {
        **settings.GATEHOUSE_ENDPOINTS,
        "keyless_openai": {"base_url": "", "api_key": "", "byok": True},
    }
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
        assert (record.provider_cost, record.price) == (Decimal(0), Decimal(0))  # the provider bills globex
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
