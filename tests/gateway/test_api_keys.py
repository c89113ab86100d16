"""API keys: shown once, stored only as a keyed hash, refused when revoked or expired, found from the
public host through the prefix index without touching other schemas."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from gateway.keys import ApiKeyError, api_key_authenticate, api_key_create, api_key_revoke, key_parse
from gateway.models import ApiKey
from tenants.models import ApiKeyRoute, Tenant
from tests.conftest import signed_in

pytestmark = pytest.mark.django_db


def all_text_in_schema(schema: str) -> str:
    """Every text-ish column of every row of the schema's key table, as one string."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT row_to_json(k)::text FROM "{schema}".gateway_apikey k')  # noqa: S608
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_portal_shows_a_new_key_exactly_once(acme: Tenant, acme_client: Client) -> None:
    response = acme_client.post("/keys/new/", {"name": "CI key", "allowed_models": "sim/fast, gpt-4o-mini"})

    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    raw = response.context["created"].raw_key
    assert raw in response.content.decode()
    listing = acme_client.get("/keys/").content.decode()
    assert "CI key" in listing
    assert raw not in listing
    assert raw.split("_")[2] not in listing  # not even the secret part
    with schema_context(acme.schema_name):
        key = ApiKey.objects.get(name="CI key")
    assert key.allowed_models == ["gpt-4o-mini", "sim/fast"]
    assert api_key_authenticate(raw).api_key.pk == key.pk


def test_only_a_keyed_hash_is_stored(acme: Tenant, settings: object) -> None:
    created = api_key_create(tenant=acme, name="k")
    raw = created.raw_key
    secret = raw.rsplit("_", 1)[1]

    stored = all_text_in_schema(acme.schema_name)
    assert secret not in stored
    assert raw not in stored
    assert created.api_key.key_hash != hashlib.sha256(raw.encode()).hexdigest()  # keyed, not a bare hash
    assert len(created.api_key.key_hash) == 64
    route_text = str(list(ApiKeyRoute.objects.filter(prefix=created.api_key.prefix).values()))
    assert secret not in route_text


def test_the_hash_depends_on_the_server_secret(acme: Tenant, settings: object) -> None:
    raw = api_key_create(tenant=acme, name="k").raw_key
    settings.GATEHOUSE_API_KEY_SECRET = "rotated-secret"  # type: ignore[attr-defined]

    with pytest.raises(ApiKeyError):
        api_key_authenticate(raw)
    expected = hmac.new(b"rotated-secret", raw.encode(), hashlib.sha256).hexdigest()
    from gateway.keys import key_hash

    assert key_hash(raw) == expected


def test_revoked_and_expired_keys_are_refused(acme: Tenant) -> None:
    revoked = api_key_create(tenant=acme, name="revoked")
    api_key_revoke(tenant=acme, api_key_id=revoked.api_key.pk)
    expired = api_key_create(tenant=acme, name="expired", expires_at=timezone.now() - timedelta(seconds=1))
    future = api_key_create(tenant=acme, name="future", expires_at=timezone.now() + timedelta(days=1))

    for created, reason in [(revoked, "revoked"), (expired, "expired")]:
        with pytest.raises(ApiKeyError) as rejected:
            api_key_authenticate(created.raw_key)
        assert rejected.value.reason == reason
    assert api_key_authenticate(future.raw_key).api_key.name == "future"


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "sk-not-ours",
        "gate_",
        "gate_short_secret",
        "gate_AAAAAAAAAAAA_" + "B" * 40,  # well-formed, unknown prefix
        "gate_AAAAAAAAAAAA_" + "B" * 39 + "!",
        "gate_ÄAAAAAAAAAAA_" + "B" * 40,
    ],
)
def test_malformed_or_unknown_keys_are_invalid(acme: Tenant, presented: str) -> None:
    with pytest.raises(ApiKeyError) as rejected:
        api_key_authenticate(presented)
    assert rejected.value.reason == "invalid"


def test_a_right_prefix_with_a_wrong_secret_is_invalid(acme: Tenant) -> None:
    raw = api_key_create(tenant=acme, name="k").raw_key
    forged = raw[:-1] + ("A" if raw[-1] != "A" else "B")

    with pytest.raises(ApiKeyError) as rejected:
        api_key_authenticate(forged)
    assert rejected.value.reason == "invalid"


def test_lookup_from_the_public_host_takes_two_indexed_queries_and_no_scan(
    acme: Tenant, globex: Tenant, django_assert_num_queries: object
) -> None:
    raw = api_key_create(tenant=globex, name="k").raw_key
    connection.set_schema_to_public()  # type: ignore[attr-defined]

    # The prefix index, then the key in the tenant's schema; django-tenants adds a SET search_path for each.
    with django_assert_num_queries(4) as captured:  # type: ignore[operator]
        identity = api_key_authenticate(raw)
    lookups = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT")]
    assert len(lookups) == 2
    assert all('"prefix" = ' in sql for sql in lookups)

    assert identity.tenant == globex
    assert connection.schema_name == "public"  # type: ignore[attr-defined]


def test_keys_parse_strictly() -> None:
    assert key_parse("gate_abcdefABCDEF_" + "x" * 40) is not None
    assert key_parse("gate_abcdefABCDEF_" + "x" * 41) is None
    assert key_parse("gate_abcdefABCDE_" + "x" * 40) is None


def test_a_viewer_cannot_create_or_revoke_keys(acme: Tenant) -> None:
    key = api_key_create(tenant=acme, name="k").api_key
    viewer = signed_in("acme.localhost", "vera@acme.test")

    assert viewer.post("/keys/new/", {"name": "nope"}).status_code == 403
    assert viewer.post(f"/keys/{key.pk}/revoke/").status_code == 403
    assert viewer.get("/keys/").status_code == 200


def test_a_developer_revokes_a_key_from_the_portal(acme: Tenant) -> None:
    created = api_key_create(tenant=acme, name="k")
    developer = signed_in("acme.localhost", "bob@acme.test")

    response = developer.post(f"/keys/{created.api_key.pk}/revoke/")

    assert response.status_code == 302
    with pytest.raises(ApiKeyError):
        api_key_authenticate(created.raw_key)


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 500},
        {"name": "k", "expires_in_days": "0"},
        {"name": "k", "expires_in_days": "-3"},
        {"name": "k", "expires_in_days": "soon"},
        {"name": "k", "allowed_models": "gpt 4"},
    ],
)
def test_bad_key_form_input_is_a_400(acme_client: Client, body: dict[str, str]) -> None:
    assert acme_client.post("/keys/new/", body).status_code == 400


def test_a_suspended_tenant_cannot_create_keys(acme: Tenant, acme_client: Client) -> None:
    from tenants.services import tenant_suspend

    tenant_suspend(tenant=acme, reason="Unpaid")

    response = acme_client.post("/keys/new/", {"name": "k"})

    assert response.status_code == 400
    assert "suspended" in response.content.decode()
    assert "suspended" in acme_client.get("/").content.decode()
