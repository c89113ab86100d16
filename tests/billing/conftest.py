"""Billing fixtures: three tenants on three plans (tests.billing.shop), and localstripe emptied per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from pytest_django import DjangoDbBlocker

from tenants.models import Tenant
from tests.billing.shop import Shop, shop_create, shop_reset
from tests.conftest import World
from tests.stripe_server import localstripe_reset


@pytest.fixture
def localstripe(localstripe_url: str) -> str:
    """localstripe's base URL, every object deleted first (webhook endpoints stay)."""
    localstripe_reset(localstripe_url)
    return localstripe_url


@pytest.fixture(scope="session")
def shop_tenants(world: World, django_db_blocker: DjangoDbBlocker) -> Shop:
    with django_db_blocker.unblock():
        return shop_create()


@pytest.fixture
def shop(shop_tenants: Shop, django_db_blocker: DjangoDbBlocker) -> Iterator[Shop]:
    """The three billing tenants with no billing facts or usage yet; committed (processes see them)."""
    with django_db_blocker.unblock():
        shop_reset(shop_tenants)
        yield Shop(*(Tenant.objects.get(pk=t.pk) for t in shop_tenants.tenants))
        shop_reset(shop_tenants)


@pytest.fixture
def stripe_local(localstripe: str, settings: Any) -> stripe.StripeClient:
    """Billing code in this process talks to the session's localstripe (emptied first)."""
    settings.STRIPE_API_BASE = localstripe
    settings.GATEHOUSE_STRIPE_LOCALSTRIPE = True
    return stripe.StripeClient(
        settings.STRIPE_API_KEY, base_addresses={"api": localstripe}, max_network_retries=0
    )
