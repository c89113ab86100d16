"""The Limits pages: the portal's (owners and admins edit within the plan, others only look) and the
console's (operators may go above the plan), and the budget alerts each may see."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from billing.models import BudgetAlert
from config.redis import redis_client
from gateway.keys import api_key_create
from gateway.limits.clock import now_ms
from gateway.limits.manage import limits_get, limits_set
from gateway.limits.service import period_of, scope_keys, to_units
from gateway.models import ApiKey, TenantLimits
from tenants.models import Tenant, User
from tests.conftest import PASSWORD, signed_in

pytestmark = pytest.mark.django_db

# Every field of the tenant's form, as an owner who changes nothing would post it (acme: Starter plan).
UNCHANGED = {
    "rpm": "",
    "tpm": "",
    "concurrency": "",
    "monthly_budget": "",
    "monthly_token_cap": "",
    "soft_percent": "80",
    "context_overflow": "refuse",
}


@pytest.fixture
def operator(world: object) -> User:
    return User.objects.create_user(
        username="ops@gatehouse.test", email="ops@gatehouse.test", password=PASSWORD, is_staff=True
    )


def alert_create(tenant: Tenant, *, key: str = "", kind: str = "spend", used: str = "85") -> BudgetAlert:
    return BudgetAlert.objects.create(
        tenant=tenant,
        api_key_prefix=key,
        period="2026-11",
        kind=kind,
        used=Decimal(used),
        cap=Decimal(100),
        threshold_percent=80,
    )


def test_an_owner_sets_limits_within_the_plan_and_sees_them(acme: Tenant) -> None:
    client = signed_in("acme.localhost", "alice@acme.test")
    body = {
        **UNCHANGED,
        "rpm": "300",
        "monthly_budget": "250.5",
        "monthly_token_cap": "1000000",
        "soft_percent": "90",
        "context_overflow": "truncate",
    }

    response = client.post("/limits/", body)

    assert (response.status_code, response["Location"]) == (302, "/limits/")
    limits = limits_get(tenant=acme)
    assert (limits.rpm, limits.tpm, limits.monthly_budget) == (300, 400_000, Decimal("250.50"))
    assert (limits.monthly_token_cap, limits.soft_percent) == (1_000_000, 90)
    with schema_context(acme.schema_name):
        assert TenantLimits.objects.get().context_overflow == "truncate"
    page = client.get("/limits/")
    html = page.content.decode()
    assert "Limits saved." in html
    assert '<td class="num">300</td><td class="num">600</td>' in html
    assert '<td class="num">250.50 USD</td><td class="num">no limit</td>' in html
    assert '<td class="num">1,000,000</td>' in html
    assert "Drop the oldest turns until the prompt fits" in html
    assert page.context["form"].initial["rpm"] == 300


def test_an_empty_field_goes_back_to_the_plans_default(acme: Tenant) -> None:
    limits_set(tenant=acme, rpm=300)
    client = signed_in("acme.localhost", "alice@acme.test")

    assert client.post("/limits/", UNCHANGED).status_code == 302

    assert limits_get(tenant=acme).rpm == 600
    with schema_context(acme.schema_name):
        assert TenantLimits.objects.get().rpm is None


def test_a_value_above_the_plan_is_a_form_error_and_nothing_is_saved(acme: Tenant) -> None:
    client = signed_in("acme.localhost", "alice@acme.test")

    response = client.post("/limits/", {**UNCHANGED, "rpm": "601", "concurrency": "10"})

    assert response.status_code == 400
    assert "rpm 601 is above the plan&#x27;s 600 (Starter)." in response.content.decode()
    assert response.context["form"].non_field_errors() == ["rpm 601 is above the plan's 600 (Starter)."]
    limits = limits_get(tenant=acme)
    assert (limits.rpm, limits.concurrency) == (600, 50)
    with schema_context(acme.schema_name):
        assert not TenantLimits.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("rpm", "-1"), ("rpm", "many"), ("monthly_budget", "1.005"), ("soft_percent", "0"), ("tpm", "9" * 12)],
)
def test_bad_values_are_form_errors(acme: Tenant, field: str, value: str) -> None:
    client = signed_in("acme.localhost", "alice@acme.test")

    response = client.post("/limits/", {**UNCHANGED, field: value})

    assert response.status_code == 400
    assert field in response.context["form"].errors


def test_an_operators_value_above_the_plan_survives_an_owners_save(acme: Tenant) -> None:
    limits_set(tenant=acme, above_plan=True, rpm=5000)
    client = signed_in("acme.localhost", "alice@acme.test")

    assert client.post("/limits/", {**UNCHANGED, "rpm": "5000", "concurrency": "10"}).status_code == 302

    limits = limits_get(tenant=acme)
    assert (limits.rpm, limits.concurrency) == (5000, 10)
    assert client.post("/limits/", {**UNCHANGED, "rpm": "5001"}).status_code == 400


@pytest.mark.parametrize("email", ["bob@acme.test", "vera@acme.test"])
def test_developers_and_viewers_see_the_limits_but_cannot_change_them(acme: Tenant, email: str) -> None:
    created = api_key_create(tenant=acme, name="ci")
    client = signed_in("acme.localhost", email)

    page = client.get("/limits/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-limit="rpm"' in html
    assert 'id="limits-form"' not in html
    assert 'id="key-limits-form"' not in html
    assert client.post("/limits/", {**UNCHANGED, "rpm": "10"}).status_code == 403
    assert client.post("/limits/", {"key": created.api_key.prefix, "rpm": "10"}).status_code == 403
    assert limits_get(tenant=acme).rpm == 600
    assert limits_get(tenant=acme, key_prefix=created.api_key.prefix).rpm is None


def test_an_owner_sets_and_clears_a_keys_own_limits(acme: Tenant) -> None:
    prefix = api_key_create(tenant=acme, name="ci").api_key.prefix
    api_key_create(tenant=acme, name="other")
    client = signed_in("acme.localhost", "alice@acme.test")
    body = {"key": prefix, "rpm": "5", "tpm": "", "concurrency": "2", "monthly_budget": "10"}

    response = client.post("/limits/", {**body, "monthly_token_cap": ""})

    assert (response.status_code, response["Location"]) == (302, f"/limits/?key={prefix}")
    with schema_context(acme.schema_name):
        key = ApiKey.objects.get(prefix=prefix)
        assert (key.rpm, key.tpm, key.concurrency, key.monthly_budget) == (5, None, 2, Decimal("10.00"))
        assert ApiKey.objects.exclude(prefix=prefix).get().rpm is None
    page = client.get(f"/limits/?key={prefix}")
    assert page.context["key_form"].initial["rpm"] == 5
    assert '<td class="num">10.00 USD</td>' in page.content.decode()

    assert client.post("/limits/", {"key": prefix, "concurrency": "2"}).status_code == 302
    assert limits_get(tenant=acme, key_prefix=prefix).rpm is None


def test_a_keys_limit_above_the_plan_or_another_tenants_key_is_refused(acme: Tenant, globex: Tenant) -> None:
    prefix = api_key_create(tenant=acme, name="ci").api_key.prefix
    foreign = api_key_create(tenant=globex, name="theirs").api_key.prefix
    client = signed_in("acme.localhost", "alice@acme.test")

    response = client.post("/limits/", {"key": prefix, "tpm": "400001"})
    assert response.status_code == 400
    assert "tpm 400001 is above the plan" in response.content.decode()
    assert client.post("/limits/", {"key": foreign, "rpm": "1"}).status_code == 400
    assert limits_get(tenant=acme, key_prefix=prefix).tpm is None
    assert limits_get(tenant=globex, key_prefix=foreign).rpm is None


def test_the_page_shows_this_months_spend_at_two_places(acme: Tenant) -> None:
    period, _, end = period_of(now_ms())
    budget_key = scope_keys(acme.pk, "", period)[4]
    redis_client().hset(
        budget_key,
        mapping={"spent": to_units(Decimal("120")), "tokens": 1234, "reserved": to_units(Decimal("0.5"))},
    )

    page = signed_in("acme.localhost", "vera@acme.test").get("/limits/")

    html = page.content.decode()
    assert '<div class="value" id="spent">120.00 USD</div>' in html  # the counter reads back as 1.2E+2
    assert '<div class="value" id="tokens">1,234</div>' in html
    assert "0.50 USD" in html
    assert f'<div class="value" id="resets-on">{end:%Y-%m-%d}</div>' in html
    assert "no monthly budget" in html


def test_the_portal_lists_this_tenants_alerts_only_newest_first(acme: Tenant, globex: Tenant) -> None:
    older = alert_create(acme, used="85")
    newer = alert_create(acme, key="abc123", kind="tokens", used="90")
    alert_create(globex, used="99")

    page = signed_in("acme.localhost", "vera@acme.test").get("/limits/")

    assert [row.alert for row in page.context["overview"].alerts] == [newer, older]
    html = page.content.decode()
    assert "Acme Corp has spent 85.00 of 100.00 USD" in html
    assert "API key abc123 has used 90 of 100 tokens" in html
    assert "Globex" not in html
    assert "99.00" not in html


def test_globex_sees_none_of_acmes_alerts_or_keys(acme: Tenant, globex: Tenant) -> None:
    alert_create(acme)
    api_key_create(tenant=acme, name="acme-only-key")

    html = signed_in("globex.localhost", "charlie@globex.test").get("/limits/").content.decode()

    assert "No budget alerts." in html
    assert "Acme" not in html
    assert "acme-only-key" not in html
    assert '<td class="num">60</td>' in html  # the Free plan's rpm


def test_an_operator_sets_a_tenants_limits_above_the_plan(operator: User, acme: Tenant) -> None:
    client = signed_in("localhost", operator.email)
    tenants = client.get("/console/").content.decode()
    assert 'href="/console/tenants/acme/limits/"' in tenants
    assert 'href="/console/alerts/"' in tenants

    response = client.post("/console/tenants/acme/limits/", {**UNCHANGED, "rpm": "5000"})

    assert (response.status_code, response["Location"]) == (302, "/console/tenants/acme/limits/")
    assert limits_get(tenant=acme).rpm == 5000
    html = client.get("/console/tenants/acme/limits/").content.decode()
    assert "Limits of Acme Corp saved." in html
    assert '<td class="num">5,000</td><td class="num">600</td>' in html
    too_big = client.post("/console/tenants/acme/limits/", {**UNCHANGED, "rpm": "9" * 12})
    assert too_big.status_code == 400
    assert client.get("/console/tenants/nobody/limits/").status_code == 404


def test_the_console_lists_every_tenants_alerts(operator: User, acme: Tenant, globex: Tenant) -> None:
    alert_create(acme, used="85")
    alert_create(globex, used="99")

    page = signed_in("localhost", operator.email).get("/console/alerts/")

    html = page.content.decode()
    assert "Acme Corp has spent 85.00 of 100.00 USD" in html
    assert "Globex has spent 99.00 of 100.00 USD" in html
    assert html.index("Globex has spent") < html.index("Acme Corp has spent")  # newest first


def test_the_alert_list_takes_the_same_queries_for_more_alerts(operator: User, acme: Tenant) -> None:
    client = signed_in("localhost", operator.email)
    alert_create(acme)
    with CaptureQueriesContext(connection) as before:
        client.get("/console/alerts/")
    for tenant in Tenant.objects.exclude(pk=acme.pk):
        alert_create(tenant)
    alert_create(acme, kind="tokens")
    with CaptureQueriesContext(connection) as after:
        client.get("/console/alerts/")

    assert len(after.captured_queries) == len(before.captured_queries)


def test_the_console_limits_pages_are_closed_to_non_staff(acme: Tenant) -> None:
    client = signed_in("localhost", "alice@acme.test")

    for path in ["/console/tenants/acme/limits/", "/console/alerts/"]:
        response = client.get(path)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]
    assert client.post("/console/tenants/acme/limits/", {**UNCHANGED, "rpm": "5000"}).status_code == 302
    assert limits_get(tenant=acme).rpm == 600
    assert signed_in("acme.localhost", "alice@acme.test").get("/console/alerts/").status_code == 404


def test_the_portal_page_takes_the_same_queries_for_more_keys_and_alerts(acme: Tenant) -> None:
    client = signed_in("acme.localhost", "alice@acme.test")
    api_key_create(tenant=acme, name="first")
    alert_create(acme)
    with CaptureQueriesContext(connection) as before:
        client.get("/limits/")
    for i in range(3):
        api_key_create(tenant=acme, name=f"more-{i}")
    alert_create(acme, kind="tokens")
    with CaptureQueriesContext(connection) as after:
        client.get("/limits/")

    assert len(after.captured_queries) == len(before.captured_queries)
