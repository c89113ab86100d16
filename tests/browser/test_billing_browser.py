"""Billing in a real headless Chromium against the real ASGI server: an owner finds an invoice and its Stripe
page, an operator changes a plan's price of one model, and an operator starts an invoice run that the real
Celery worker executes while the console shows its progress."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django import DjangoDbBlocker

from billing.models import Invoice, InvoiceLine, InvoiceRun, Plan, PlanModelPrice
from tenants.models import Tenant, User
from tests.browser.conftest import orm_call
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

OPERATOR = "ops-browser@gatehouse.test"


def sign_in(page: Page, url: str, email: str) -> None:
    page.goto(f"{url}/login/")
    page.locator("#id_username").fill(email)
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def operator(live_server_url: str, django_db_blocker: DjangoDbBlocker) -> Iterator[str]:
    """A staff user (committed), deleted afterwards."""
    with django_db_blocker.unblock():
        orm_call(lambda: User.objects.create_user(OPERATOR, OPERATOR, PASSWORD, is_staff=True))
    yield OPERATOR
    with django_db_blocker.unblock():
        orm_call(lambda: User.objects.filter(email=OPERATOR).delete())


def invoice_commit(url: str) -> Invoice:
    """An open invoice of globex whose hosted page is the server's health check (a page that loads)."""
    invoice = Invoice.objects.create(
        uid=uuid.uuid4(),
        tenant=Tenant.objects.get(slug="globex"),
        period="2026-02",
        status=Invoice.Status.OPEN,
        total=Decimal("56.78"),
        number="GLOBEX-0002",
        hosted_invoice_url=f"{url}/healthz",
    )
    InvoiceLine.objects.create(
        uid=uuid.uuid4(),
        invoice=invoice,
        position=1,
        kind=InvoiceLine.Kind.BASE_FEE,
        description="Browser test fee, February 2026",
        exact_amount=Decimal("56.78"),
        amount=Decimal("56.78"),
    )
    return invoice


def test_an_owner_sees_an_invoice_and_opens_its_stripe_page(
    live_server_url: str, page: Page, artifacts_dir: Path, django_db_blocker: DjangoDbBlocker
) -> None:
    port = live_server_url.rsplit(":", 1)[1]
    with django_db_blocker.unblock():
        invoice = orm_call(lambda: invoice_commit(live_server_url))
    try:
        sign_in(page, f"http://globex.localhost:{port}", "charlie@globex.test")
        page.get_by_role("link", name="Billing").click()
        expect(page.get_by_role("heading", name="Billing", exact=True)).to_be_visible()
        row = page.locator('#invoices tr[data-period="2026-02"]')
        expect(row).to_contain_text("GLOBEX-0002")
        expect(row).to_contain_text("56.78 USD")
        expect(row).to_contain_text("Open")
        link = row.get_by_role("link", name="View or pay at Stripe")
        expect(link).to_have_attribute("href", f"{live_server_url}/healthz")
        expect(link).to_have_attribute("target", "_blank")
        page.screenshot(path=str(artifacts_dir / "portal-billing.png"), full_page=True)

        with page.expect_popup() as popup:
            link.click()
        expect(popup.value.locator("body")).to_contain_text('"status": "ok"')
        popup.value.close()

        row.get_by_role("link", name="GLOBEX-0002").click()
        expect(page.locator("#lines")).to_contain_text("Browser test fee, February 2026")
        expect(page.locator("#total")).to_have_text("56.78 USD")
    finally:
        with django_db_blocker.unblock():
            orm_call(lambda: Invoice.objects.filter(pk=invoice.pk).delete())


def plan_commit() -> Plan:
    plan = Plan.objects.create(slug="browser-plan", name="Browser plan", monthly_fee=Decimal("5.00"))
    PlanModelPrice.objects.create(
        plan=plan,
        model_name="sim/smart",
        rule=PlanModelPrice.Rule.FIXED,
        input_price_per_mtok=Decimal(3),
        output_price_per_mtok=Decimal(12),
    )
    return plan


def test_an_operator_changes_a_plans_price_of_one_model(
    live_server_url: str, page: Page, operator: str, artifacts_dir: Path, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        plan = orm_call(plan_commit)
    try:
        sign_in(page, live_server_url, operator)
        page.goto(f"{live_server_url}/console/")
        page.get_by_role("link", name="Plans", exact=True).click()
        page.locator("#plans").get_by_role("link", name="Browser plan").click()
        row = page.locator('#prices tr[data-model="sim/smart"]')
        row.get_by_label("Input per 1M").fill("4.5")
        row.get_by_label("Output per 1M").fill("")
        page.get_by_role("button", name="Save plan").click()
        expect(row.locator(".errorlist")).to_contain_text("A fixed price per 1m tokens needs this.")

        row.get_by_label("Output per 1M").fill("13.25")
        page.get_by_role("button", name="Save plan").click()

        expect(page.get_by_text("Plan Browser plan saved; gateways reload its prices.")).to_be_visible()
        expect(row.get_by_label("Input per 1M")).to_have_value("4.500000")
        expect(row.get_by_label("Output per 1M")).to_have_value("13.250000")
        page.screenshot(path=str(artifacts_dir / "console-plan.png"), full_page=True)
        with django_db_blocker.unblock():
            saved = orm_call(lambda: PlanModelPrice.objects.get(plan=plan, model_name="sim/smart"))
        assert (saved.input_price_per_mtok, saved.output_price_per_mtok) == (Decimal("4.5"), Decimal("13.25"))
    finally:
        with django_db_blocker.unblock():
            orm_call(lambda: Plan.objects.filter(pk=plan.pk).delete())


def runs_delete(run_ids: list[int]) -> None:
    Invoice.objects.filter(run_id__in=run_ids).delete()
    InvoiceRun.objects.filter(pk__in=run_ids).delete()


def test_an_operator_starts_an_invoice_run_and_watches_it_finish(
    live_server_url: str,
    celery_worker: str,
    page: Page,
    operator: str,
    artifacts_dir: Path,
    django_db_blocker: DjangoDbBlocker,
) -> None:
    run_ids: list[int] = []
    try:
        sign_in(page, live_server_url, operator)
        page.goto(f"{live_server_url}/console/")
        page.get_by_role("link", name="Billing", exact=True).click()
        expect(page.get_by_role("heading", name="Invoice runs")).to_be_visible()
        # The default month is the previous one, which globex (created by this session) did not exist in:
        # its invoice has nothing to bill, so the run never waits for Stripe.
        page.get_by_label("Tenant").select_option("globex")
        page.get_by_role("button", name="Start the run").click()

        expect(page.get_by_text("for Globex queued.")).to_be_visible()
        row = page.locator("#runs tbody tr").first
        run_ids.append(int(row.get_attribute("data-run") or 0))
        expect(row).to_contain_text("globex")
        expect(row.locator(".status")).to_have_text("Done", timeout=60_000)  # the page reloads itself
        expect(row.locator(".count")).to_have_text("1 / 1")
        expect(row.locator("progress")).to_have_attribute("value", "1")
        expect(page.locator('meta[http-equiv="refresh"]')).to_have_count(0)
        page.screenshot(path=str(artifacts_dir / "console-invoice-run.png"), full_page=True)

        row.get_by_role("link").first.click()
        expect(page.locator('#period-invoices tr[data-slug="globex"]')).to_contain_text("Nothing to bill")
    finally:
        with django_db_blocker.unblock():
            orm_call(lambda: runs_delete(run_ids))
