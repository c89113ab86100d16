"""The Billing pages: the portal's (this month so far, the tenant's own invoices, its plan; amounts for owners
and admins only) and the console's (invoice runs, a month's invoices, failed and overdue payments)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import tasks
from billing.grace import REASON_PREFIX
from billing.margins import period_margins
from billing.models import Invoice, InvoiceLine, InvoiceRun, Plan, PlanModelPrice
from billing.periods import period_of, period_previous
from billing.rating import cents, period_rate
from billing.rollups import rollup_period
from billing.selectors import pace_projection
from tenants.models import Tenant, User
from tenants.services import tenant_suspend
from tests.billing.shop import usage_add
from tests.conftest import host_client, signed_in

pytestmark = pytest.mark.django_db


def invoice_create(tenant: Tenant, period: str, total: str = "12.34", **fields: Any) -> Invoice:
    invoice = Invoice.objects.create(
        uid=uuid.uuid4(), tenant=tenant, period=period, total=Decimal(total), **fields
    )
    InvoiceLine.objects.create(
        uid=uuid.uuid4(),
        invoice=invoice,
        position=1,
        kind=InvoiceLine.Kind.BASE_FEE,
        description=f"Base fee of {tenant.slug} for {period}",
        exact_amount=Decimal(total),
        amount=Decimal(total),
    )
    return invoice


def test_an_owner_sees_this_months_usage_the_invoice_so_far_and_a_projection(
    acme: Tenant, globex: Tenant
) -> None:
    now = timezone.now()
    miss = usage_add(acme, now, "sim/fast", 1_000_000, 500_000, count=2)[0]
    hit = usage_add(acme, now, "sim/fast", 1_000_000, 500_000, hit=True)[0]
    usage_add(globex, now, "sim/smart", 777_777, 1)

    page = signed_in("acme.localhost", "alice@acme.test").get("/billing/")

    assert page.status_code == 200
    [row] = page.context["usage"]
    assert (row.model, row.requests, row.cache_hits) == ("sim/fast", 3, 1)
    assert (row.input_tokens, row.output_tokens) == (3_000_000, 1_500_000)
    per_request = [event.unit_input_price + event.unit_output_price / 2 for event in (miss, hit)]
    assert row.amount == cents(2 * per_request[0] + per_request[1])
    estimate = page.context["estimate"]
    rating = period_rate(acme, period_of(now))
    assert estimate.rating.total == rating.total
    kinds = [line.kind for line in estimate.rating.lines]
    assert kinds == ["usage", "cache_hits", "base_fee"]  # Starter's fee up to the end of the month
    assert estimate.usage == sum(line.amount for line in estimate.rating.lines[:2])
    assert estimate.projected == pace_projection(rating=rating, elapsed=estimate.elapsed)
    html = page.content.decode()
    assert f'id="invoice-so-far">{rating.total} USD<' in html
    assert f'id="projected">{estimate.projected} USD<' in html
    assert 'id="projection-note"' in html
    assert "Starter plan, $49.00/month" in html
    assert "sim/smart" not in html
    assert '<td class="num">3,000,000</td><td class="num">1,500,000</td>' in html
    assert "777,777" not in html


def test_the_usage_table_is_empty_without_requests(globex: Tenant) -> None:
    page = signed_in("globex.localhost", "charlie@globex.test").get("/billing/")

    assert page.context["usage"] == []
    assert "No requests this month." in page.content.decode()
    assert page.context["estimate"].rating.total == Decimal(0)  # the Free plan: no fee


def test_an_owner_sees_the_tenants_own_invoices_newest_first(acme: Tenant, globex: Tenant) -> None:
    older = invoice_create(acme, "2026-01", status="paid", number="ACME-0001")
    newer = invoice_create(
        acme, "2026-02", total="56.78", status="open", hosted_invoice_url="https://pay.example/inv_2"
    )
    invoice_create(globex, "2026-02", total="987.65", number="GLOBEX-1")

    page = signed_in("acme.localhost", "alice@acme.test").get("/billing/")

    assert list(page.context["invoices"]) == [newer, older]
    html = page.content.decode()
    assert "56.78 USD" in html
    assert "ACME-0001" in html
    assert 'href="https://pay.example/inv_2" target="_blank" rel="noopener"' in html
    assert f'href="/billing/invoices/{older.uid}/"' in html
    assert "987.65" not in html
    assert "GLOBEX-1" not in html


def test_an_invoice_page_lists_its_lines(acme: Tenant) -> None:
    invoice = invoice_create(acme, "2026-03", total="49.00", status="open", number="ACME-0003")

    page = signed_in("acme.localhost", "alice@acme.test").get(f"/billing/invoices/{invoice.uid}/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Base fee of acme for 2026-03" in html
    assert '<th class="num" id="total">49.00 USD</th>' in html


def test_another_tenants_invoice_is_a_404(acme: Tenant, globex: Tenant) -> None:
    theirs = invoice_create(globex, "2026-03", total="987.65")
    client = signed_in("acme.localhost", "alice@acme.test")

    response = client.get(f"/billing/invoices/{theirs.uid}/")

    assert response.status_code == 404
    assert "987.65" not in response.content.decode()
    assert client.get(f"/billing/invoices/{uuid.uuid4()}/").status_code == 404


@pytest.mark.parametrize("email", ["bob@acme.test", "vera@acme.test"])
def test_developers_and_viewers_see_usage_and_invoice_status_but_no_amounts(acme: Tenant, email: str) -> None:
    usage_add(acme, timezone.now(), "sim/fast", 1000, 500)
    invoice = invoice_create(
        acme, "2026-02", total="56.78", status="open", hosted_invoice_url="https://pay.example/inv_2"
    )
    client = signed_in("acme.localhost", email)

    page = client.get("/billing/")

    assert page.status_code == 200
    assert page.context["estimate"] is None
    html = page.content.decode()
    assert '<tr data-model="sim/fast"><td>sim/fast</td><td class="num">1</td>' in html
    assert '<tr data-period="2026-02">' in html
    assert "Open" in html
    assert "56.78" not in html
    assert "pay.example" not in html
    assert "49.00" not in html  # the plan's fee
    assert 'id="estimate"' not in html
    assert client.get(f"/billing/invoices/{invoice.uid}/").status_code == 403


def test_the_billing_pages_need_a_signed_in_member(acme: Tenant) -> None:
    invoice = invoice_create(acme, "2026-02")

    for path in ["/billing/", f"/billing/invoices/{invoice.uid}/"]:
        response = host_client("acme.localhost").get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_a_tenant_suspended_for_an_unpaid_invoice_is_shown_where_to_pay(acme: Tenant) -> None:
    invoice_create(
        acme,
        "2026-02",
        total="56.78",
        status="open",
        number="ACME-0002",
        issued_at=timezone.now() - timedelta(days=30),
        hosted_invoice_url="https://pay.example/inv_2",
    )
    tenant_suspend(tenant=acme, reason=f"{REASON_PREFIX} ACME-0002, issued 2026-03-01: pay it")

    html = signed_in("acme.localhost", "alice@acme.test").get("/billing/").content.decode()
    banner = html[html.index('id="unpaid"') : html.index("<h1>Billing</h1>")]
    assert 'href="https://pay.example/inv_2"' in banner
    assert "Pay invoice ACME-0002 (56.78 USD)" in banner

    viewer = signed_in("acme.localhost", "vera@acme.test").get("/billing/").content.decode()
    assert "An owner or admin of Acme Corp can pay it from this page." in viewer
    assert "pay.example" not in viewer


def test_an_operators_suspension_shows_no_pay_banner(acme: Tenant) -> None:
    invoice_create(acme, "2026-02", status="open", hosted_invoice_url="https://pay.example/inv_2")
    tenant_suspend(tenant=acme, reason="Fraud review")

    html = signed_in("acme.localhost", "alice@acme.test").get("/billing/").content.decode()

    assert 'id="unpaid"' not in html
    assert "Fraud review" in html  # the site-wide suspension banner


def test_the_plan_shows_its_fees_and_own_model_prices(acme: Tenant) -> None:
    starter = Plan.objects.get(slug="starter")
    PlanModelPrice.objects.create(
        plan=starter,
        model_name="sim/smart",
        rule=PlanModelPrice.Rule.FIXED,
        input_price_per_mtok=Decimal("3.000000"),
        output_price_per_mtok=Decimal("12.500000"),
    )
    PlanModelPrice.objects.create(plan=starter, model_name="sim/code", markup_percent=Decimal("5.00"))

    html = signed_in("acme.localhost", "alice@acme.test").get("/billing/").content.decode()

    assert "49.00 USD a month" in html
    assert "provider's price + 20.00%" in html  # every other model
    assert "3.00 input, 12.50 output USD per 1M tokens" in html
    assert '<tr data-model="sim/code"><td>sim/code</td>\n      <td>provider\'s price + 5.00%</td>' in html


def test_the_plan_shows_its_fee_on_requests_made_with_the_tenants_own_keys(acme: Tenant) -> None:
    fees = {"byok_fee_per_1k_tokens": Decimal("0.0025"), "byok_fee_per_request": Decimal("0.001")}
    Plan.objects.filter(slug="starter").update(**fees)

    html = signed_in("acme.localhost", "alice@acme.test").get("/billing/").content.decode()

    row = html[html.index("Requests on your own provider keys") :].split("</tr>")[0]
    assert "0.0025 USD per 1,000 tokens + 0.001 USD per request" in row


def test_the_billing_page_takes_the_same_queries_for_more_invoices(acme: Tenant) -> None:
    client = signed_in("acme.localhost", "alice@acme.test")
    invoice_create(acme, "2026-01")
    with CaptureQueriesContext(connection) as before:
        client.get("/billing/")
    for month in range(2, 6):
        invoice_create(acme, f"2026-{month:02}")
    with CaptureQueriesContext(connection) as after:
        client.get("/billing/")

    assert len(after.captured_queries) == len(before.captured_queries)


CONSOLE_PAGES = [
    "/console/billing/",
    "/console/billing/invoices/",
    "/console/billing/failed/",
    "/console/billing/margin/",
    "/console/plans/",
    "/console/plans/new/",
    "/console/plans/starter/",
]


def test_the_console_billing_pages_are_for_staff_only(acme: Tenant) -> None:
    client = signed_in("localhost", "alice@acme.test")

    for path in CONSOLE_PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/admin/login/" in response["Location"]
    assert client.post("/console/billing/", {"period": "2026-01", "tenant": ""}).status_code == 302
    assert not InvoiceRun.objects.exists()
    assert signed_in("acme.localhost", "alice@acme.test").get("/console/billing/").status_code == 404


def test_the_console_billing_pages_open_for_staff(operator: User) -> None:
    client = signed_in("localhost", operator.email)

    for path in CONSOLE_PAGES:
        assert client.get(path).status_code == 200, path
    nav = client.get("/console/").content.decode()
    assert 'href="/console/billing/"' in nav
    assert 'href="/console/plans/"' in nav


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The run ids the console hands to the Celery task (the worker path is tested with a real worker)."""
    calls: list[int] = []
    monkeypatch.setattr(tasks.invoice_run_task, "delay", calls.append)
    return calls


@pytest.mark.parametrize(("scope", "slug"), [("acme", "acme"), ("", None)])
def test_an_operator_starts_a_run_of_a_past_month(
    operator: User,
    acme: Tenant,
    enqueued: list[int],
    django_capture_on_commit_callbacks: Any,
    scope: str,
    slug: str | None,
) -> None:
    client = signed_in("localhost", operator.email)
    period = period_previous(timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/console/billing/", {"period": period, "tenant": scope})

    assert (response.status_code, response["Location"]) == (302, "/console/billing/")
    run = InvoiceRun.objects.get()
    assert (run.period, run.trigger, run.status) == (period, "console", InvoiceRun.Status.QUEUED)
    assert (run.tenant.slug if run.tenant else None) == slug
    assert enqueued == [run.pk]
    html = client.get("/console/billing/").content.decode()
    assert f'<tr data-run="{run.pk}">' in html
    assert '<meta http-equiv="refresh" content="3">' in html


@pytest.mark.parametrize(
    ("period", "error"),
    [
        ("this month", "has not ended yet"),
        ("2026-13", "A period is YYYY-MM"),
        ("", "This field is required."),
    ],
)
def test_a_month_that_has_not_ended_or_no_month_is_refused(
    operator: User, enqueued: list[int], django_capture_on_commit_callbacks: Any, period: str, error: str
) -> None:
    if period == "this month":
        period = period_of(timezone.now())
    client = signed_in("localhost", operator.email)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/console/billing/", {"period": period, "tenant": ""})

    assert response.status_code == 400
    assert error in str(response.context["form"].errors["period"])
    assert not InvoiceRun.objects.exists()
    assert enqueued == []


def test_the_runs_page_shows_progress_and_reloads_only_while_a_run_is_active(
    operator: User, acme: Tenant
) -> None:
    run = InvoiceRun.objects.create(
        period="2026-02",
        status=InvoiceRun.Status.FAILED,
        tenants_total=4,
        tenants_done=2,
        tenants_failed=1,
        attempts=2,
        last_error="acme: " + "x" * 300,
    )
    client = signed_in("localhost", operator.email)

    page = client.get("/console/billing/")

    html = page.content.decode()
    assert 'http-equiv="refresh"' not in html
    assert '<progress value="3" max="4"></progress>' in html
    assert '<span class="count">3 / 4</span> <span class="run-failed">(1 failed)</span>' in html
    assert "acme: xxx" in html
    assert "x" * 200 not in html.replace(f'title="{run.last_error}"', "")  # an excerpt only
    assert page.context["form"]["period"].value() == period_previous(timezone.now())
    InvoiceRun.objects.create(period="2026-03", tenant=acme)
    assert '<meta http-equiv="refresh" content="3">' in client.get("/console/billing/").content.decode()


def test_the_runs_page_takes_the_same_queries_for_more_runs(operator: User, acme: Tenant) -> None:
    client = signed_in("localhost", operator.email)
    InvoiceRun.objects.create(period="2026-01", tenant=acme)
    with CaptureQueriesContext(connection) as before:
        client.get("/console/billing/")
    for month in range(2, 6):
        InvoiceRun.objects.create(period=f"2026-{month:02}", tenant=acme)
    with CaptureQueriesContext(connection) as after:
        client.get("/console/billing/")

    assert len(after.captured_queries) == len(before.captured_queries)


def test_a_months_invoices_list_every_tenant_and_filter_by_status(
    operator: User, acme: Tenant, globex: Tenant
) -> None:
    period = period_of(timezone.now())
    invoice_create(acme, period, status="open", stripe_invoice_id="in_acme_1", number="ACME-9")
    invoice_create(acme, "2026-01", status="paid", stripe_invoice_id="in_acme_old")
    client = signed_in("localhost", operator.email)

    page = client.get(f"/console/billing/invoices/?period={period}")

    rows = {row.tenant.slug: row.invoice for row in page.context["rows"]}
    assert rows["acme"] is not None
    assert rows["acme"].stripe_invoice_id == "in_acme_1"
    assert rows["globex"] is None
    html = page.content.decode()
    assert "in_acme_1" in html
    assert "in_acme_old" not in html
    assert "No invoice yet" in html
    opened = client.get(f"/console/billing/invoices/?period={period}&status=open").context["rows"]
    assert [row.tenant.slug for row in opened] == ["acme"]
    missing = client.get(f"/console/billing/invoices/?period={period}&status=none").context["rows"]
    assert "globex" in [row.tenant.slug for row in missing]
    assert "acme" not in [row.tenant.slug for row in missing]
    assert client.get("/console/billing/invoices/?period=26-1").status_code == 400


def test_the_default_month_is_the_previous_one(operator: User) -> None:
    page = signed_in("localhost", operator.email).get("/console/billing/invoices/")

    assert page.context["form"].cleaned_data["period"] == period_previous(timezone.now())


def test_failed_payments_list_failures_and_overdue_invoices_newest_first(
    operator: User, acme: Tenant, globex: Tenant
) -> None:
    now = timezone.now()
    failed_then_paid = invoice_create(
        acme, "2026-01", status="paid", payment_failures=2, issued_at=now - timedelta(days=60)
    )
    overdue = invoice_create(globex, "2026-02", status="open", issued_at=now - timedelta(days=30))
    invoice_create(acme, "2026-02", status="open", issued_at=now - timedelta(days=1))  # within grace
    invoice_create(globex, "2026-01", status="paid", issued_at=now - timedelta(days=60))

    page = signed_in("localhost", operator.email).get("/console/billing/failed/")

    assert list(page.context["invoices"]) == [overdue, failed_then_paid]
    assert [invoice.overdue for invoice in page.context["invoices"]] == [True, False]
    assert '<strong class="run-failed">overdue</strong>' in page.content.decode()


def test_the_console_shows_each_tenants_and_models_margin(
    acme: Tenant, globex: Tenant, operator: User
) -> None:
    now = timezone.now()
    period = period_of(now)
    usage_add(acme, now, "sim/smart", 1_000_000, 100_000)  # cost $2.80, charged $3.36 (starter: +20 %)
    usage_add(acme, now, "sim/smart", 1_000_000, 100_000, hit=True)  # no cost, charged $0.336
    usage_add(globex, now, "sim/fast", 1_000_000, 0)  # cost $0.10
    invoice_create(globex, period, "50.00", status=Invoice.Status.RATED)  # its fees count once rated
    for tenant in (acme, globex):
        rollup_period(tenant, period)

    margins = period_margins(period)
    page = signed_in("localhost", operator.email).get(f"/console/billing/margin/?period={period}")

    rows = {m.label: (m.provider_cost, m.revenue, m.margin, m.margin_percent) for m in margins.tenants}
    assert rows["acme"] == (Decimal("2.8"), Decimal("3.70"), Decimal("0.90"), Decimal("24.3"))
    assert rows["globex"] == (Decimal("0.1"), Decimal("50.00"), Decimal("49.90"), Decimal("99.8"))
    assert [m.label for m in margins.tenants] == ["globex", "acme"]  # largest margin first
    assert margins.total.margin == Decimal("50.80")
    smart = next(m for m in margins.models if m.label == "sim/smart")
    assert (smart.requests, smart.revenue, smart.margin) == (2, Decimal("3.70"), Decimal("0.90"))
    assert page.status_code == 200
    body = page.content.decode()
    assert all(text in body for text in ('data-label="acme"', "24.3 %", "99.8 %"))
