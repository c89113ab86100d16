from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django_tenants.utils import schema_context

from gateway.keys import ApiKeyError, api_key_authenticate, api_key_create
from gateway.models import ApiKey
from tenants.models import ApiKeyRoute, Domain, Membership, Tenant, User
from tenants.services import tenant_create, tenant_delete, tenant_reactivate, tenant_suspend

pytestmark = pytest.mark.django_db


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", [name])
        return cursor.fetchone() is not None


def tables_in(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


def test_it_creates_schema_domain_and_owner(world: object) -> None:
    created = tenant_create(slug="initech", name="Initech", owner_email="Peter@Initech.test")

    tenant = created.tenant
    assert tenant.schema_name == "t_initech"
    assert schema_exists("t_initech")
    assert {"gateway_apikey", "gateway_requestrecord"} <= tables_in("t_initech")
    assert "gateway_apikey" not in tables_in("public")
    assert Domain.objects.get(tenant=tenant).domain == "initech.localhost"
    assert created.owner.email == "peter@initech.test"
    assert created.owner_password  # generated, shown once
    assert created.owner.check_password(created.owner_password)
    membership = Membership.objects.get(tenant=tenant)
    assert (membership.user, membership.role) == (created.owner, "owner")
    assert tenant.plan.is_default


def test_it_makes_an_existing_user_owner_without_touching_their_password(world: object) -> None:
    created = tenant_create(slug="second-org", name="Second", owner_email="alice@acme.test")

    assert created.owner_password is None
    assert created.owner.check_password("correct-horse-battery")
    assert Membership.objects.filter(user=created.owner).count() == 2


@pytest.mark.parametrize(
    "slug",
    ["www", "admin", "public", "console", "Acme Corp", "a", "-abc", "abc-", "ab_c", "ab--c", "émile", "pg-x"],
)
def test_it_refuses_bad_slugs_and_leaves_nothing_behind(world: object, slug: str) -> None:
    with pytest.raises(ValidationError):
        tenant_create(slug=slug, name="X", owner_email="new@x.test", owner_password="a-good-long-password")

    assert not User.objects.filter(email="new@x.test").exists()
    assert not Tenant.objects.filter(name="X").exists()


def test_it_refuses_a_taken_slug(world: object) -> None:
    with pytest.raises(ValidationError, match="taken"):
        tenant_create(slug="acme", name="Another Acme", owner_email="x@y.test")


def test_suspending_refuses_keys_and_reactivating_restores_them(acme: Tenant) -> None:
    raw = api_key_create(tenant=acme, name="k").raw_key

    tenant_suspend(tenant=acme, reason="Unpaid invoice")
    with pytest.raises(ApiKeyError) as rejected:
        api_key_authenticate(raw)
    assert rejected.value.reason == "suspended"

    tenant_reactivate(tenant=acme)
    assert api_key_authenticate(raw).tenant == acme


def test_deleting_drops_the_schema_and_public_rows_but_keeps_users(world: object) -> None:
    created = tenant_create(slug="doomed", name="Doomed", owner_email="owner@doomed.test")
    api_key_create(tenant=created.tenant, name="k")
    with schema_context("t_doomed"):
        assert ApiKey.objects.count() == 1

    tenant_delete(tenant=created.tenant)

    assert not schema_exists("t_doomed")
    assert not Domain.objects.filter(domain="doomed.localhost").exists()
    assert not ApiKeyRoute.objects.filter(tenant_id=created.tenant.pk).exists()
    assert not Membership.objects.filter(user=created.owner).exists()
    assert User.objects.filter(email="owner@doomed.test").exists()
