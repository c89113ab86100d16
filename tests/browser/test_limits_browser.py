"""The portal's Limits page in a real headless Chromium against the real ASGI server: an owner lowers the
requests per minute, sees it in force, and is told (not shown a 500) when a value is above the plan."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django import DjangoDbBlocker

from gateway.models import TenantLimits
from tests.browser.conftest import tenant_rows_delete
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_an_owner_lowers_the_requests_per_minute(
    live_server_url: str, page: Page, artifacts_dir: Path, django_db_blocker: DjangoDbBlocker
) -> None:
    port = live_server_url.rsplit(":", 1)[1]
    page.goto(f"http://globex.localhost:{port}/login/")
    page.locator("#id_username").fill("charlie@globex.test")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    try:
        page.get_by_role("link", name="Limits").click()
        expect(page.get_by_role("heading", name="Limits", exact=True)).to_be_visible()
        in_force = page.locator('#limits tr[data-limit="rpm"] td').nth(1)
        expect(in_force).to_have_text("60")  # the Free plan's default
        rpm = page.locator("#limits-form").get_by_label("Requests per minute")
        rpm.fill("45")
        page.get_by_role("button", name="Save limits").click()

        expect(page.get_by_text("Limits saved.")).to_be_visible()
        expect(in_force).to_have_text("45")
        expect(rpm).to_have_value("45")
        page.screenshot(path=str(artifacts_dir / "portal-limits.png"), full_page=True)

        rpm.fill("61")
        page.get_by_role("button", name="Save limits").click()
        error = page.locator("#limits-form .errorlist")
        expect(error).to_contain_text("rpm 61 is above the plan's 60 (Free).")
        expect(in_force).to_have_text("45")
    finally:
        with django_db_blocker.unblock():
            tenant_rows_delete(TenantLimits, "t_globex")
