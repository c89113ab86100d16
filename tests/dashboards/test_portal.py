from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.models import Plan
from gateway.models import ProviderCredential, RequestRecord
from tenants.models import Tenant
from tests.conftest import host_client, signed_in

pytestmark = pytest.mark.django_db


def test_the_overview_shows_this_tenants_usage(acme: Tenant, globex: Tenant) -> None:
    with schema_context(acme.schema_name):
        for i in range(3):
            RequestRecord.objects.create(
                request_id=f"acme-{i}",
                requested_model="auto",
                input_tokens=100,
                output_tokens=50,
                price=Decimal("0.0125"),
                created_at=timezone.now(),
            )
    with schema_context(globex.schema_name):
        RequestRecord.objects.create(request_id="globex-1", requested_model="auto", input_tokens=9999)

    page = signed_in("acme.localhost", "alice@acme.test").get("/")

    usage = page.context["usage"]
    assert (usage.requests, usage.tokens, usage.price) == (3, 450, Decimal("0.04"))
    assert len(usage.days) == 30
    assert "9999" not in page.content.decode()


def test_portal_pages_need_a_signed_in_member(acme: Tenant) -> None:
    for path in ["/", "/keys/", "/members/"]:
        response = host_client("acme.localhost").get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_members_lists_this_tenants_members_only(acme: Tenant) -> None:
    html = signed_in("acme.localhost", "bob@acme.test").get("/members/").content.decode()

    assert "alice@acme.test" in html
    assert "vera@acme.test" in html
    assert "charlie@globex.test" not in html


def test_the_key_list_takes_the_same_queries_for_more_keys(acme: Tenant) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from gateway.keys import api_key_create

    client = signed_in("acme.localhost", "alice@acme.test")
    api_key_create(tenant=acme, name="first")
    with CaptureQueriesContext(connection) as before:
        client.get("/keys/")
    for i in range(5):
        api_key_create(tenant=acme, name=f"more-{i}")
    with CaptureQueriesContext(connection) as after:
        client.get("/keys/")

    assert len(after.captured_queries) == len(before.captured_queries)


def test_a_developer_overrides_and_resets_a_fallback_chain(acme: Tenant) -> None:
    from gateway.chains import chains_effective

    client = signed_in("acme.localhost", "bob@acme.test")

    saved = client.post("/routing/", {"task_type": "code", "models": "sim/smart, sim/code"})
    assert saved.status_code == 302
    assert chains_effective(tenant=acme)["code"] == (["sim/smart", "sim/code"], True)

    client.post("/routing/", {"task_type": "code", "reset": "1"})
    assert chains_effective(tenant=acme)["code"][1] is False


@pytest.mark.parametrize(
    "body",
    [
        {"task_type": "code", "models": "gpt-99"},
        {"task_type": "poetry", "models": "sim/fast"},
        {"task_type": "code", "models": ""},
    ],
)
def test_bad_chains_are_refused_with_a_400(acme: Tenant, body: dict[str, str]) -> None:
    response = signed_in("acme.localhost", "bob@acme.test").post("/routing/", body)

    assert response.status_code == 400


def test_a_viewer_cannot_change_routing(acme: Tenant) -> None:
    client = signed_in("acme.localhost", "vera@acme.test")

    assert client.get("/routing/").status_code == 200
    assert client.post("/routing/", {"task_type": "code", "models": "sim/fast"}).status_code == 403


def test_an_owner_stores_a_provider_key_encrypted_and_sees_only_its_end(acme: Tenant) -> None:
    from django.db import connection

    from gateway.credentials import credentials_plain

    client = signed_in("acme.localhost", "alice@acme.test")
    secret = "sk-tenant-own-key-1234567890abcd"

    assert client.post("/provider-keys/", {"endpoint": "openai", "api_key": secret}).status_code == 302

    page = client.get("/provider-keys/").content.decode()
    assert "abcd" in page
    assert secret not in page
    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_api_key FROM t_acme.gateway_providercredential")
        (stored,) = cursor.fetchone()
    assert secret not in stored
    assert credentials_plain("t_acme") == {"openai": secret}

    client.post("/provider-keys/", {"endpoint": "openai", "remove": "1"})
    assert credentials_plain("t_acme") == {}


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": "simulator", "api_key": "sk-1234567890"},
        {"endpoint": "openai", "api_key": "x"},
        {"endpoint": "nope", "api_key": "sk-1234567890"},
    ],
)
def test_bad_provider_keys_are_refused(acme: Tenant, body: dict[str, str]) -> None:
    client = signed_in("acme.localhost", "alice@acme.test")

    assert client.post("/provider-keys/", body).status_code == 400


def test_the_provider_keys_page_offers_only_endpoints_that_take_tenant_keys(
    acme: Tenant, settings: Any
) -> None:
    settings.GATEHOUSE_ENDPOINTS = {
        **settings.GATEHOUSE_ENDPOINTS,
        "vllm": {"base_url": "http://vllm.test/v1", "api_key": ""},
        "together": {"base_url": "http://together.test/v1", "api_key": "", "byok": True},
    }

    page = signed_in("acme.localhost", "alice@acme.test").get("/provider-keys/").content.decode()

    offered = re.findall(r'<tr data-endpoint="([^"]+)"', page)
    assert offered == ["anthropic", "openai", "together"]


def test_the_provider_keys_page_says_what_requests_on_an_own_key_cost(acme: Tenant) -> None:
    fees = {"byok_fee_per_1k_tokens": Decimal("0.004"), "byok_fee_per_request": Decimal("0.0002")}
    Plan.objects.filter(pk=acme.plan_id).update(cache_hit_percent=Decimal(10), **fees)

    page = signed_in("acme.localhost", "bob@acme.test").get("/provider-keys/").content.decode()

    fee = re.search(r'<span id="byok-fee">(.*?)</span>', page, re.DOTALL)
    assert fee is not None
    assert " ".join(fee.group(1).split()) == "0.004 USD per 1,000 tokens + 0.0002 USD per request"
    assert "answers from the cache: 10.00% of that" in " ".join(page.split())


def test_a_key_for_a_keyless_server_is_refused_with_the_reason(acme: Tenant, settings: Any) -> None:
    settings.GATEHOUSE_ENDPOINTS = {
        **settings.GATEHOUSE_ENDPOINTS,
        "vllm": {"base_url": "http://vllm.test/v1", "api_key": ""},
    }
    client = signed_in("acme.localhost", "alice@acme.test")

    response = client.post("/provider-keys/", {"endpoint": "vllm", "api_key": "sk-any-eight-chars"})

    assert response.status_code == 400
    assert "vllm does not accept your own keys" in response.content.decode()
    with schema_context(acme.schema_name):
        assert not ProviderCredential.objects.exists()


def test_a_key_of_an_endpoint_that_stopped_taking_keys_is_shown_ignored_and_can_be_removed(
    acme: Tenant, settings: Any
) -> None:
    client = signed_in("acme.localhost", "alice@acme.test")
    client.post("/provider-keys/", {"endpoint": "anthropic", "api_key": "sk-ant-own-key-9876"})
    settings.GATEHOUSE_ENDPOINTS = {
        **settings.GATEHOUSE_ENDPOINTS,
        "anthropic": {**settings.GATEHOUSE_ENDPOINTS["anthropic"], "byok": False},
    }

    page = client.get("/provider-keys/").content.decode()
    row = page[page.index('data-endpoint="anthropic"') :].split("</tr>")[0]
    assert "…9876" in row
    assert "Ignored: this endpoint no longer accepts your own key" in row
    assert 'name="api_key"' not in row  # it can be removed, not replaced

    assert client.post("/provider-keys/", {"endpoint": "anthropic", "remove": "1"}).status_code == 302
    with schema_context(acme.schema_name):
        assert not ProviderCredential.objects.exists()


def test_developers_cannot_set_provider_keys(acme: Tenant) -> None:
    client = signed_in("acme.localhost", "bob@acme.test")

    assert (
        client.post("/provider-keys/", {"endpoint": "openai", "api_key": "sk-1234567890"}).status_code == 403
    )


def test_a_developer_sets_the_cache_and_sees_what_it_saved(acme: Tenant) -> None:
    from gateway.cache.manage import cache_settings_get

    with schema_context(acme.schema_name):
        RequestRecord.objects.create(
            request_id="hit-1",
            requested_model="sim/fast",
            cache_status="hit-exact",
            cache_saving=Decimal("1.25"),
        )
    client = signed_in("acme.localhost", "bob@acme.test")
    form = {"enabled": "on", "semantic": "on", "threshold": "0.95", "ttl_seconds": "600"}

    assert client.post("/cache/", {**form, "max_entries": "500", "max_temperature": "0.5"}).status_code == 302

    saved = cache_settings_get(tenant=acme)
    assert (saved.enabled, saved.semantic, saved.threshold, saved.ttl_seconds) == (True, True, 0.95, 600)
    assert (saved.max_entries, saved.max_temperature) == (500, 0.5)
    page = client.get("/cache/").content.decode()
    assert "$1.25" in page
    assert "1 of 1 requests" in page


@pytest.mark.parametrize("threshold", ["0.2", "1.5", "nan"])
def test_a_bad_cache_threshold_is_refused(acme: Tenant, threshold: str) -> None:
    client = signed_in("acme.localhost", "alice@acme.test")
    body = {"threshold": threshold, "ttl_seconds": "600", "max_entries": "5", "max_temperature": "1"}

    assert client.post("/cache/", body).status_code == 400


def test_a_viewer_sees_but_cannot_change_the_cache(acme: Tenant) -> None:
    client = signed_in("acme.localhost", "vera@acme.test")

    assert client.get("/cache/").status_code == 200
    assert client.post("/cache/", {"clear": "1"}).status_code == 403


def test_an_owner_sets_the_pii_policy_over_the_defaults(acme: Tenant) -> None:
    from gateway.pii.manage import pii_policy_get

    client = signed_in("acme.localhost", "alice@acme.test")
    page = client.get("/pii/").content.decode()
    assert 'value="redact" selected' in page  # secrets and cards, by default

    form = dict.fromkeys(("secret", "email", "iban", "card", "ssn", "ip", "phone"), "off")
    assert (
        client.post("/pii/", {**form, "email": "redact", "ssn": "block", "restore": "on"}).status_code == 302
    )

    policy = pii_policy_get(tenant=acme)
    assert (policy.actions["email"], policy.actions["ssn"], policy.actions["card"]) == (
        "redact",
        "block",
        "off",
    )
    assert policy.restore
    assert client.post("/pii/", {**form, "email": "shred"}).status_code == 400


def test_a_developer_sees_but_cannot_change_the_pii_policy(acme: Tenant) -> None:
    client = signed_in("acme.localhost", "bob@acme.test")

    assert client.get("/pii/").status_code == 200
    assert client.post("/pii/", {"email": "redact"}).status_code == 403
