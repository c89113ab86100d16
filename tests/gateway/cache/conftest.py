"""Fixtures of the cache tests: two tenants of their own with the cache on, keys, and a clean cache each test.

The gateway process reads these rows, so they are committed (not inside a test transaction)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django_tenants.utils import schema_context
from pytest_django import DjangoDbBlocker

from billing.models import Plan
from gateway.cache.manage import cache_clear, cache_settings_set
from gateway.keys import api_key_create
from gateway.models import CacheEntry
from tenants.models import Tenant
from tenants.services import tenant_create
from tests.conftest import World
from tests.gateway.api.conftest import gateway, keys, sim  # noqa: F401 (the live gateway and simulator)

DEFAULTS = {
    "enabled": True,
    "semantic": True,
    "threshold": 0.92,
    "ttl_seconds": 3600,
    "max_entries": 10_000,
    "max_temperature": 1.0,
}


@dataclass(frozen=True)
class CacheTenant:
    tenant: Tenant
    key: str

    def configure(self, **values: object) -> None:
        """Change the settings; the gateway applies them through pub/sub invalidation, within milliseconds."""
        cache_settings_set(tenant=self.tenant, **{**DEFAULTS, **values})
        time.sleep(0.1)

    def entries(self) -> list[CacheEntry]:
        with schema_context(self.tenant.schema_name):
            return list(CacheEntry.objects.order_by("pk"))


@dataclass(frozen=True)
class CacheTenants:
    a: CacheTenant
    b: CacheTenant


@pytest.fixture(scope="session")
def cache_tenants(world: World, django_db_blocker: DjangoDbBlocker) -> CacheTenants:
    made = []
    with django_db_blocker.unblock():
        for slug in ("cachea", "cacheb"):
            tenant = tenant_create(
                slug=slug,
                name=slug,
                owner_email=f"owner@{slug}.test",
                owner_password="correct-horse-battery",
                plan=Plan.objects.get(slug="starter"),  # the free plan allows only 5 requests in flight
            ).tenant
            cache_settings_set(tenant=tenant, **DEFAULTS)
            made.append(CacheTenant(tenant, api_key_create(tenant=tenant, name="cache tests").raw_key))
    return CacheTenants(*made)


@pytest.fixture
def caches(cache_tenants: CacheTenants, django_db_blocker: DjangoDbBlocker) -> Iterator[CacheTenants]:
    """Both tenants with default settings and empty caches (their rows are committed)."""
    with django_db_blocker.unblock():
        for tenant in (cache_tenants.a, cache_tenants.b):
            cache_clear(tenant=tenant.tenant)
            tenant.configure()
        yield cache_tenants
