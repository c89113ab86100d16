"""Last-used times: recorded in Redis on authentication (no database write), moved into the tenant's schema
by the periodic task, here run by a real Celery worker process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django_tenants.utils import schema_context

from config.redis import redis_client
from gateway import tasks
from gateway.key_usage import LAST_USED_KEY, api_key_mark_used, api_keys_flush_last_used
from gateway.keys import CreatedKey, api_key_authenticate, api_key_create
from gateway.models import ApiKey
from tenants.models import ApiKeyRoute, Tenant
from tests.conftest import World


@pytest.fixture
def committed_key(world: World, django_db_blocker: pytest.FixtureRequest) -> Iterator[CreatedKey]:
    """A key committed outside any test transaction, so that the worker process can see it."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        created = api_key_create(tenant=world.acme, name="worker-visible")
        yield created
        with schema_context(world.acme.schema_name):
            ApiKey.objects.filter(pk=created.api_key.pk).delete()
        ApiKeyRoute.objects.filter(prefix=created.api_key.prefix).delete()


def test_authenticating_records_use_in_redis_without_a_database_write(
    committed_key: CreatedKey, django_db_blocker: pytest.FixtureRequest, django_assert_num_queries: object
) -> None:
    with django_db_blocker.unblock(), django_assert_num_queries(4) as captured:  # type: ignore[attr-defined,operator]
        api_key_authenticate(committed_key.raw_key)

    assert not [q for q in captured.captured_queries if q["sql"].startswith(("UPDATE", "INSERT"))]
    assert redis_client().hget(LAST_USED_KEY, f"t_acme:{committed_key.api_key.prefix}")


def test_a_celery_worker_flushes_last_used_into_the_tenant_schema(
    committed_key: CreatedKey, celery_worker: str, django_db_blocker: pytest.FixtureRequest
) -> None:
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        api_key_authenticate(committed_key.raw_key)

    updated = tasks.api_keys_flush_last_used.delay().get(timeout=60)

    assert updated == 1
    with django_db_blocker.unblock(), schema_context("t_acme"):  # type: ignore[attr-defined]
        key = ApiKey.objects.get(pk=committed_key.api_key.pk)
    assert key.last_used_at is not None
    assert not redis_client().exists(LAST_USED_KEY)


@pytest.mark.django_db
def test_flush_skips_deleted_tenants_and_never_moves_time_backwards(acme: Tenant) -> None:
    created = api_key_create(tenant=acme, name="k")
    api_key_mark_used(schema_name="t_acme", prefix=created.api_key.prefix, at=2_000_000_000)
    api_key_mark_used(schema_name="t_gone", prefix="whatever1234", at=2_000_000_000)
    assert api_keys_flush_last_used() == 1

    api_key_mark_used(schema_name="t_acme", prefix=created.api_key.prefix, at=1_000_000_000)
    assert api_keys_flush_last_used() == 0
    with schema_context("t_acme"):
        assert ApiKey.objects.get(pk=created.api_key.pk).last_used_at.timestamp() == 2_000_000_000  # type: ignore[union-attr]
