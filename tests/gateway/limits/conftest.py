"""Fixtures of the limits tests: the live gateway and simulator, a tenant of its own, and setting limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django_tenants.utils import schema_context
from pytest_django import DjangoDbBlocker

from billing.models import Plan
from gateway.catalog.models import CatalogModel
from gateway.keys import api_key_create
from gateway.limits.manage import limits_set
from gateway.models import ApiKey, TenantLimits
from tenants.models import Tenant
from tenants.services import tenant_create
from tests.conftest import World
from tests.gateway.api.conftest import gateway, keys, sim  # noqa: F401

HELLO = {"model": "sim/fast", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 20}


@dataclass(frozen=True)
class Org:
    tenant: Tenant
    key: str
    other_key: str

    @property
    def prefix(self) -> str:
        return self.key.split("_")[1]


@pytest.fixture(scope="session")
def org(world: World, django_db_blocker: DjangoDbBlocker) -> Org:
    with django_db_blocker.unblock():
        tenant = tenant_create(
            slug="limitco",
            name="Limit Co",
            owner_email="owner@limitco.test",
            owner_password="correct-horse-battery",
            plan=Plan.objects.get(slug="starter"),
        ).tenant
        CatalogModel.objects.update_or_create(
            name="sim/tiny-echo",
            defaults={
                "provider": "openai",
                "endpoint": "simulator",
                "upstream_model": "sim/echo",
                "context_window": 120,
                "max_output_tokens": 20,
            },
        )
        return Org(
            tenant,
            api_key_create(tenant=tenant, name="limits").raw_key,
            api_key_create(tenant=tenant, name="other").raw_key,
        )


@pytest.fixture
def limits(org: Org, django_db_blocker: DjangoDbBlocker) -> Iterator[Any]:
    """Set limits (tenant or key); every limit goes back to the plan's defaults afterwards."""

    def apply(key_prefix: str | None = None, **values: Any) -> None:
        with django_db_blocker.unblock():
            limits_set(tenant=org.tenant, key_prefix=key_prefix, above_plan=True, **values)
        time.sleep(0.15)  # every web process drops the cached principal on the pub/sub message

    yield apply
    with django_db_blocker.unblock(), schema_context(org.tenant.schema_name):
        TenantLimits.objects.all().delete()
        ApiKey.objects.update(
            rpm=None, tpm=None, concurrency=None, monthly_budget=None, monthly_token_cap=None
        )
    time.sleep(0.15)
