"""The portal in a real headless Chromium against the real ASGI server: sign up, land in the portal,
create an API key that is shown once, be refused on another tenant's host, tune the response cache."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django import DjangoDbBlocker

from gateway.models import CacheSettings
from tests.browser.conftest import tenant_rows_delete
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_sign_up_then_create_a_key_that_is_shown_once(
    live_server_url: str, page: Page, artifacts_dir: Path
) -> None:
    slug = f"browser-{uuid.uuid4().hex[:8]}"
    port = live_server_url.rsplit(":", 1)[1]

    page.goto(f"{live_server_url}/signup/")
    page.locator("#id_name").fill("Browser Co")
    page.locator("#id_slug").fill(slug)
    page.locator("#id_email").fill(f"owner@{slug}.test")
    page.locator("#id_password1").fill("a sturdy passphrase 42")
    page.locator("#id_password2").fill("a sturdy passphrase 42")
    page.get_by_role("button", name="Create").click()

    expect(page).to_have_url(f"http://{slug}.localhost:{port}/")
    expect(page.get_by_role("heading", name="Browser Co")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "portal-overview.png"), full_page=True)

    page.get_by_role("link", name="API keys").click()
    page.locator("#id_name").fill("from the browser")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text().strip()
    assert re.fullmatch(r"gate_[A-Za-z0-9]{12}_[A-Za-z0-9]{40}", key)
    page.screenshot(path=str(artifacts_dir / "portal-key-created.png"), full_page=True)

    page.get_by_role("link", name="Back to API keys").click()
    row = page.locator("#keys tbody tr").filter(has_text="from the browser")
    expect(row).to_contain_text(key[:17])  # the visible prefix
    assert key not in page.content()
    assert key[18:] not in page.content()


def test_an_acme_member_is_refused_on_globex(live_server_url: str, page: Page) -> None:
    port = live_server_url.rsplit(":", 1)[1]

    page.goto(f"http://globex.localhost:{port}/login/")
    page.locator("#id_username").fill("alice@acme.test")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_text("This account is not a member of Globex.")).to_be_visible()
    page.goto(f"http://globex.localhost:{port}/keys/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/keys/$"))


def test_an_owner_tunes_the_cache(
    live_server_url: str, page: Page, artifacts_dir: Path, django_db_blocker: DjangoDbBlocker
) -> None:
    port = live_server_url.rsplit(":", 1)[1]
    page.goto(f"http://globex.localhost:{port}/login/")
    page.locator("#id_username").fill("charlie@globex.test")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    try:
        page.get_by_role("link", name="Cache").click()
        expect(page.get_by_role("heading", name="Response cache")).to_be_visible()
        page.get_by_label("Similarity threshold").fill("0.97")
        page.get_by_label("Also answer similar (not only identical) prompts").uncheck()
        page.get_by_role("button", name="Save").click()

        expect(page.get_by_text("Cache settings saved.")).to_be_visible()
        expect(page.get_by_label("Similarity threshold")).to_have_value("0.97")
        expect(page.get_by_label("Also answer similar (not only identical) prompts")).not_to_be_checked()
        page.screenshot(path=str(artifacts_dir / "portal-cache.png"), full_page=True)
        threshold = page.get_by_label("Similarity threshold")
        threshold.fill("0.3")
        page.get_by_role("button", name="Save").click()
        assert threshold.evaluate("e => e.validity.rangeUnderflow")  # the browser refuses to submit it
    finally:
        with django_db_blocker.unblock():
            tenant_rows_delete(CacheSettings, "t_globex")
