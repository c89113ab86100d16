"""A real Celery worker process runs the usage safety net: events waiting in the stream reach the tenant's
ledger, and each key's last use moves forward with them (the request path never writes either)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from gateway import tasks
from gateway.keys import CreatedKey, api_key_create
from gateway.metering.emit import usage_emit_sync
from gateway.metering.events import UsageEvent
from gateway.metering.store import usage_store
from gateway.models import ApiKey, RequestRecord
from tenants.models import ApiKeyRoute, Tenant
from tests.conftest import World


def event_for(key: CreatedKey, *, tenant_id: int, created_ms: int) -> UsageEvent:
    return UsageEvent(
        request_id=f"worker-{uuid.uuid4().hex}",
        tenant_schema="t_acme",
        tenant_id=tenant_id,
        api_key_prefix=key.api_key.prefix,
        created_ms=created_ms,
        requested_model="sim/fast",
        served_model="sim/fast",
        provider="simulator",
        task_type="",
        input_tokens=10,
        output_tokens=5,
        tokens_estimated=False,
        provider_cost=Decimal("0.00000300"),
        price=Decimal("0.00000360"),
        latency_ms=12,
        ttft_ms=None,
        cache_status="miss",
        http_status=200,
        error_class="",
        stream=False,
    )


@pytest.fixture
def committed_key(world: World, django_db_blocker: pytest.FixtureRequest) -> Iterator[CreatedKey]:
    """A key committed outside any test transaction, so that the worker process can see it."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        created = api_key_create(tenant=world.acme, name="worker-visible")
        yield created
        with schema_context(world.acme.schema_name):
            RequestRecord.objects.filter(api_key_prefix=created.api_key.prefix).delete()
            ApiKey.objects.filter(pk=created.api_key.pk).delete()
        ApiKeyRoute.objects.filter(prefix=created.api_key.prefix).delete()


def test_a_celery_worker_stores_waiting_usage_and_moves_last_used(
    world: World, committed_key: CreatedKey, celery_worker: str, django_db_blocker: pytest.FixtureRequest
) -> None:
    now_ms = int(time.time() * 1000)
    event = event_for(committed_key, tenant_id=world.acme.pk, created_ms=now_ms)
    usage_emit_sync(event)

    handled = tasks.usage_consume_pending.delay().get(timeout=60)

    assert handled >= 1
    with django_db_blocker.unblock(), schema_context("t_acme"):  # type: ignore[attr-defined]
        assert RequestRecord.objects.filter(request_id=event.request_id).count() == 1
        key = ApiKey.objects.get(pk=committed_key.api_key.pk)
    assert key.last_used_at is not None
    assert abs(key.last_used_at.timestamp() * 1000 - now_ms) < 1000


@pytest.mark.django_db
def test_last_used_never_moves_backwards(acme: Tenant) -> None:
    created = api_key_create(tenant=acme, name="k")
    usage_store([event_for(created, tenant_id=acme.pk, created_ms=2_000_000_000_000)])
    usage_store([event_for(created, tenant_id=acme.pk, created_ms=1_000_000_000_000)])

    with schema_context("t_acme"):
        last_used = ApiKey.objects.get(pk=created.api_key.pk).last_used_at
    assert last_used is not None
    assert last_used.timestamp() == 2_000_000_000
