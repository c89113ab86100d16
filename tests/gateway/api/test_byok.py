"""Bring your own key: a tenant's own provider key makes that provider's models usable for it alone."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django_tenants.utils import schema_context

from config.redis import redis_client
from gateway.credentials import credential_set
from gateway.metering.consumer import usage_consume_once
from gateway.models import RequestRecord
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
        "keyless_openai": {"base_url": "", "api_key": ""},
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
