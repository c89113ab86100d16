from __future__ import annotations

import pytest

from tenants.models import Tenant, User
from tests.conftest import PASSWORD, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(world: object) -> User:
    return User.objects.create_user(
        username="ops@gatehouse.test", email="ops@gatehouse.test", password=PASSWORD, is_staff=True
    )


def test_the_console_lists_every_tenant_for_staff(operator: User) -> None:
    page = signed_in("localhost", operator.email).get("/console/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Acme Corp" in html
    assert "Globex" in html
    assert "http://acme.localhost:8000/" in html


def test_the_console_is_closed_to_non_staff(world: object) -> None:
    client = signed_in("localhost", "alice@acme.test")

    response = client.get("/console/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_console_is_not_served_on_tenant_hosts(operator: User) -> None:
    client = signed_in("acme.localhost", "alice@acme.test")

    assert client.get("/console/").status_code == 404


def test_an_operator_suspends_and_reactivates_a_tenant(operator: User) -> None:
    client = signed_in("localhost", operator.email)

    client.post("/console/tenants/globex/status/", {"action": "suspend", "reason": "Fraud review"})
    globex = Tenant.objects.get(slug="globex")
    assert (globex.status, globex.suspension_reason) == ("suspended", "Fraud review")

    client.post("/console/tenants/globex/status/", {"action": "reactivate"})
    assert Tenant.objects.get(slug="globex").status == "active"


def test_an_unknown_console_action_is_a_400(operator: User) -> None:
    client = signed_in("localhost", operator.email)

    assert client.post("/console/tenants/globex/status/", {"action": "explode"}).status_code == 400
    assert client.post("/console/tenants/nobody/status/", {"action": "suspend"}).status_code == 404


def test_the_tenant_list_takes_the_same_queries_for_more_tenants(operator: User) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = signed_in("localhost", operator.email)
    with CaptureQueriesContext(connection) as before:
        client.get("/console/")
    from tenants.services import tenant_create

    for slug in ["n-plus-one", "n-plus-two", "n-plus-three"]:
        tenant_create(slug=slug, name=slug, owner_email=f"o@{slug}.test")
    with CaptureQueriesContext(connection) as after:
        client.get("/console/")

    assert len(after.captured_queries) == len(before.captured_queries)
