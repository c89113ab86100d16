from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from django.db import connection, models
from django_tenants.utils import schema_context
from playwright.sync_api import Browser, Page, sync_playwright

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google hosts this machine cannot reach.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Module scope: Playwright's sync API keeps an event loop on the main thread while it is open, and Django
# refuses ORM calls from a thread with a running loop, so it must be closed before other tests run.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def orm_call(call: Callable[[], T]) -> T:
    """Run ORM code from a thread of its own: Playwright's event loop runs on the test's thread, where Django
    refuses synchronous ORM calls. What it writes is committed; the caller unblocks the database."""

    def run() -> T:
        try:
            return call()
        finally:
            connection.close()  # this thread's own connection: the test database is dropped at the end

    with ThreadPoolExecutor(1) as thread:
        return thread.submit(run).result()


def tenant_rows_delete(model: type[models.Model], schema: str) -> None:
    """Delete a tenant's settings rows (back to the defaults, for the other tests)."""

    def delete() -> None:
        with schema_context(schema):
            model._default_manager.all().delete()

    orm_call(delete)
