"""Which endpoints take tenants' own keys (the operator's `byok` flag), what a tenant may store, and which
models a tenant may call as a result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import schema_context

from gateway.cache.policy import CachePolicy
from gateway.credentials import (
    CredentialView,
    credential_list,
    credential_set,
    credentials_plain,
    endpoint_is_byok,
)
from gateway.crypto import secret_encrypt
from gateway.http import deployment_for
from gateway.models import ProviderCredential
from gateway.pricing import PlanPricing
from gateway.routing import ModelInfo
from gateway.state import Principal
from tenants.models import Tenant

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def endpoints(settings: Any) -> dict[str, dict[str, Any]]:
    """The built-in endpoints plus three extra ones: keyed, keyless taking tenant keys, keyless vLLM."""
    settings.GATEHOUSE_ENDPOINTS = {
        **settings.GATEHOUSE_ENDPOINTS,
        "openai": {"base_url": "http://openai.test/v1", "api_key": "", "byok": True},
        "keyed": {"base_url": "http://keyed.test/v1", "api_key": "sk-deployment"},
        "byok_keyless": {"base_url": "http://byok.test/v1", "api_key": "", "byok": True},
        "vllm": {"base_url": "http://vllm.test/v1", "api_key": ""},
    }
    endpoints: dict[str, dict[str, Any]] = settings.GATEHOUSE_ENDPOINTS
    return endpoints


def model(endpoint: str) -> ModelInfo:
    return ModelInfo(
        name=f"{endpoint}/m",
        provider="openai",
        endpoint=endpoint,
        upstream_model="m",
        input_price_per_mtok=Decimal(1),
        output_price_per_mtok=Decimal(2),
        context_window=128_000,
        max_output_tokens=4096,
        supports_vision=False,
        supports_tools=True,
        supports_n=True,
    )


def principal(credentials: dict[str, str]) -> Principal:
    return Principal(
        tenant_id=1,
        tenant_slug="acme",
        schema="t_acme",
        tenant_active=True,
        key_prefix="AAAAAAAAAAAA",
        allowed_models=(),
        expires_at=None,
        pricing=PlanPricing(),
        chains={},
        cache=CachePolicy(False, False, 0.9, 3600, 100, 1.0),
        credentials=credentials,
    )


def test_openai_and_anthropic_take_tenant_keys_by_default_and_the_simulator_does_not() -> None:
    assert [endpoint_is_byok(name) for name in ("openai", "anthropic", "simulator", "nope")] == [
        True,
        True,
        False,
        False,
    ]


def test_an_extra_endpoint_takes_tenant_keys_only_when_it_says_so(endpoints: Any) -> None:
    assert endpoint_is_byok("byok_keyless")
    assert not endpoint_is_byok("vllm")
    assert not endpoint_is_byok("keyed")


def test_a_byok_flag_that_is_not_a_boolean_stops_the_settings_from_loading() -> None:
    env = {**os.environ, "GATEHOUSE_EXTRA_ENDPOINTS": json.dumps({"vllm": {"base_url": "", "byok": "false"}})}
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings.base"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode != 0
    assert "byok of 'vllm' must be true or false" in result.stderr


@pytest.mark.parametrize("endpoint", ["simulator", "vllm", "keyed"])
def test_a_tenant_cannot_store_a_key_for_an_endpoint_that_does_not_take_them(
    acme: Tenant, endpoints: Any, endpoint: str
) -> None:
    with pytest.raises(ValidationError, match="does not accept your own keys"):
        credential_set(tenant=acme, endpoint=endpoint, api_key="sk-anything-0001")

    with schema_context(acme.schema_name):
        assert not ProviderCredential.objects.exists()


def test_a_key_kept_from_before_an_endpoint_stopped_taking_them_is_ignored_shown_and_removable(
    acme: Tenant, endpoints: dict[str, dict[str, Any]]
) -> None:
    credential_set(tenant=acme, endpoint="byok_keyless", api_key="sk-acme-own-key-0001")
    assert credentials_plain("t_acme") == {"byok_keyless": "sk-acme-own-key-0001"}

    endpoints["byok_keyless"] = {**endpoints["byok_keyless"], "byok": False}

    assert credentials_plain("t_acme") == {}
    assert CredentialView("byok_keyless", "0001", accepted=False) in credential_list(tenant=acme)
    with pytest.raises(ValidationError, match="does not accept your own keys"):
        credential_set(tenant=acme, endpoint="byok_keyless", api_key="sk-acme-own-key-0002")
    credential_set(tenant=acme, endpoint="byok_keyless", api_key=None)
    with schema_context(acme.schema_name):
        assert not ProviderCredential.objects.exists()


def test_a_stored_key_of_an_endpoint_gone_from_the_settings_is_ignored(acme: Tenant) -> None:
    with schema_context(acme.schema_name):
        ProviderCredential.objects.create(
            endpoint="retired", encrypted_api_key=secret_encrypt("sk-retired-0001"), last_four="0001"
        )

    assert credentials_plain("t_acme") == {}
    assert credential_list(tenant=acme)[-1] == CredentialView("retired", "0001", accepted=False)
    with pytest.raises(ValidationError, match="Unknown endpoint"):
        credential_set(tenant=acme, endpoint="retired", api_key="sk-retired-0002")


def test_the_portal_list_names_only_endpoints_that_take_tenant_keys(acme: Tenant, endpoints: Any) -> None:
    listed = [view.endpoint for view in credential_list(tenant=acme)]

    assert listed == ["anthropic", "byok_keyless", "openai"]


@pytest.mark.parametrize(
    ("endpoint", "credentials", "callable_"),
    [
        ("keyed", {}, True),  # the deployment's key
        ("openai", {}, False),  # a BYOK endpoint without a deployment key: only with the tenant's own
        ("openai", {"openai": "sk-own"}, True),
        ("byok_keyless", {}, False),
        ("byok_keyless", {"byok_keyless": "sk-own"}, True),
        ("vllm", {}, True),  # a keyless server that takes no tenant keys: every tenant may call it
        ("simulator", {}, True),
    ],
)
def test_a_model_is_callable_with_a_deployment_key_an_own_key_or_on_a_keyless_server(
    endpoints: Any, endpoint: str, credentials: dict[str, str], callable_: bool
) -> None:
    assert principal(credentials).can_call(model(endpoint)) is callable_


def test_a_call_uses_the_tenants_key_only_where_the_endpoint_takes_it(
    acme: Tenant, endpoints: dict[str, dict[str, Any]]
) -> None:
    credential_set(tenant=acme, endpoint="byok_keyless", api_key="sk-acme-own-key-0001")
    assert deployment_for(model("byok_keyless"), credentials_plain("t_acme")).api_key.endswith("0001")

    endpoints["byok_keyless"] = {**endpoints["byok_keyless"], "byok": False, "api_key": "sk-platform"}

    assert deployment_for(model("byok_keyless"), credentials_plain("t_acme")).api_key == "sk-platform"
