"""The portal's Requests page: the latest requests, and a search by the gateway's request id or the client's
own (the label kept from its x-request-id), never across tenants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from gateway.models import RefusalCount, RequestRecord
from tenants.models import Tenant
from tests.conftest import host_client, signed_in

pytestmark = pytest.mark.django_db


def _record(request_id: str, label: str = "", minutes_ago: int = 0) -> None:
    RequestRecord.objects.create(
        request_id=request_id,
        client_request_id=label,
        requested_model="sim/fast",
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_a_request_is_found_by_the_gateways_id_or_the_clients(acme: Tenant, globex: Tenant) -> None:
    with schema_context(acme.schema_name):
        _record("req_one", "order-42", minutes_ago=2)
        _record("req_two", "order-43", minutes_ago=1)
    with schema_context(globex.schema_name):
        _record("req_globex", "order-42")
    portal = signed_in("acme.localhost", "vera@acme.test")  # viewers may look too

    by_label = portal.get("/requests/", {"q": "order-42"})
    by_id = portal.get("/requests/", {"q": " req_two "})
    latest = portal.get("/requests/")

    assert [r.request_id for r in by_label.context["records"]] == ["req_one"]  # never globex's
    assert [r.request_id for r in by_id.context["records"]] == ["req_two"]
    assert [r.request_id for r in latest.context["records"]] == ["req_two", "req_one"]
    assert "req_globex" not in latest.content.decode()


def test_any_search_text_is_safe_and_simply_finds_nothing(acme: Tenant) -> None:
    portal = signed_in("acme.localhost", "alice@acme.test")

    for query in ["' OR 1=1 --", "\x00", "é" * 10_000, "<script>alert(1)</script>"]:
        page = portal.get("/requests/", {"q": query})
        assert page.status_code == 200
        assert page.context["records"] == []
    assert (
        "<script>alert" not in portal.get("/requests/", {"q": "<script>alert(1)</script>"}).content.decode()
    )


def test_the_page_takes_the_same_queries_for_more_requests(acme: Tenant) -> None:
    portal = signed_in("acme.localhost", "alice@acme.test")
    with schema_context(acme.schema_name):
        _record("req_a")
    with CaptureQueriesContext(connection) as few:
        portal.get("/requests/")
    with schema_context(acme.schema_name):
        for number in range(20):
            _record(f"req_b{number}")
    with CaptureQueriesContext(connection) as many:
        portal.get("/requests/")

    assert len(many) == len(few)


def test_refusals_counted_in_process_are_shown_as_a_total(acme: Tenant) -> None:
    with schema_context(acme.schema_name):
        RefusalCount.objects.create(
            minute=timezone.now(),
            api_key_prefix="k1",
            code="rate_limit_exceeded",
            http_status=429,
            source="host:1:a",
            count=37,
        )

    page = signed_in("acme.localhost", "alice@acme.test").get("/requests/")

    assert page.context["refused"] == 37
    assert "37 more request(s) were refused" in page.content.decode()


def test_the_page_needs_a_signed_in_member(acme: Tenant) -> None:
    response = host_client("acme.localhost").get("/requests/")
    assert response.status_code == 302
