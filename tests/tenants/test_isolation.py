"""Tenant isolation: globex never sees acme's rows, and acme's members never get into globex's portal."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from gateway.keys import api_key_create
from gateway.models import ApiKey, RequestRecord
from tenants.models import Tenant
from tests.conftest import PASSWORD, host_client, signed_in

pytestmark = pytest.mark.django_db


def test_rows_in_acme_are_invisible_from_globex(acme: Tenant, globex: Tenant) -> None:
    api_key_create(tenant=acme, name="acme secret key")
    with schema_context(acme.schema_name):
        RequestRecord.objects.create(request_id="req-acme-1", requested_model="sim/fast")

    with schema_context(globex.schema_name):
        assert not ApiKey.objects.filter(name="acme secret key").exists()
        assert not RequestRecord.objects.filter(request_id="req-acme-1").exists()
    with schema_context(acme.schema_name):
        assert ApiKey.objects.filter(name="acme secret key").exists()


def test_a_member_of_acme_cannot_sign_in_on_globex(globex: Tenant) -> None:
    client = host_client("globex.localhost")

    response = client.post("/login/", {"username": "alice@acme.test", "password": PASSWORD})

    assert response.status_code == 403
    assert "not a member of Globex" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_acme_session_carried_to_globex_is_refused_and_signed_out(acme: Tenant, globex: Tenant) -> None:
    client = signed_in("acme.localhost", "alice@acme.test")
    session_cookie = client.cookies["sessionid"].value
    thief = host_client("globex.localhost")
    thief.cookies["sessionid"] = session_cookie

    response = thief.get("/keys/")

    assert response.status_code == 403
    assert "_auth_user_id" not in thief.session


def test_globex_portal_lists_only_globex_keys(acme: Tenant, globex: Tenant) -> None:
    api_key_create(tenant=acme, name="acme-only-key")
    api_key_create(tenant=globex, name="globex-own-key")
    client = signed_in("globex.localhost", "charlie@globex.test")

    page = client.get("/keys/").content.decode()

    assert "globex-own-key" in page
    assert "acme-only-key" not in page


def test_revoking_another_tenants_key_id_is_a_404(acme: Tenant, globex: Tenant) -> None:
    acme_key = api_key_create(tenant=acme, name="acme-key").api_key
    client = signed_in("globex.localhost", "charlie@globex.test")

    response = client.post(f"/keys/{acme_key.pk}/revoke/")

    assert response.status_code == 404
    with schema_context(acme.schema_name):
        assert ApiKey.objects.get(pk=acme_key.pk).revoked_at is None


def test_an_unknown_tenant_host_is_a_404(world: object) -> None:
    assert host_client("nobody.localhost").get("/").status_code == 404


def test_staff_without_membership_cannot_enter_a_portal(acme: Tenant) -> None:
    from tenants.models import User

    User.objects.create_user(username="op@x.test", email="op@x.test", password=PASSWORD, is_staff=True)
    response = host_client("acme.localhost").post("/login/", {"username": "op@x.test", "password": PASSWORD})

    assert response.status_code == 403


def test_a_host_outside_allowed_hosts_is_a_404_not_a_500(world: object) -> None:
    assert host_client("evil.example.com").get("/").status_code == 404
