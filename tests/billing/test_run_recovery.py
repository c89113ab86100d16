"""An invoice run killed half-way, or facing an unreachable Stripe, ends with exactly one correct invoice
per tenant when it is run again (or retries by itself): nothing lost, nothing billed twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import stripe
from django.conf import settings
from pytest_django import DjangoDbBlocker

from billing.models import Invoice, InvoiceRun, StripeCustomer
from billing.reconcile import reconcile_period
from billing.runs import invoice_run_create
from billing.stripe_api import PAUSE_AFTER_WRITES_ENV
from billing.tasks import invoice_run_task
from tests.billing.shop import Shop, usage_september
from tests.billing.test_invoicing import EXPECTED_TOTALS, PERIOD, stripe_invoices
from tests.live import ROOT, free_port, process_env, stop, wait_for
from tests.stripe_server import start_localstripe


def billing_run(stripe_base: str, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    env = process_env(STRIPE_API_BASE=stripe_base, GATEHOUSE_STRIPE_LOCALSTRIPE="true", **extra)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "billing_run", "--period", PERIOD],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def assert_billed_once(shop: Shop, client: stripe.StripeClient) -> None:
    """One customer, one non-empty Stripe invoice with the ledger's total, no stray item, per tenant."""
    for name, tenant in zip(EXPECTED_TOTALS, shop.tenants, strict=True):
        invoice = Invoice.objects.get(tenant=tenant, period=PERIOD)
        customer = StripeCustomer.objects.get(tenant=tenant).customer_id
        email = client.v1.customers.retrieve(customer).email or ""
        assert len(client.v1.customers.list(params={"email": email}).data) == 1, name
        billed = [r for r in stripe_invoices(client, customer) if r["total"]]
        assert [(r["id"], r["total"]) for r in billed] == [(invoice.stripe_invoice_id, invoice.total_cents)]
        assert invoice.total == EXPECTED_TOTALS[name]
        # localstripe lists only pending items: a duplicate pushed but never invoiced would show here.
        assert client.v1.invoice_items.list(params={"customer": customer}).data == [], name
    assert reconcile_period(PERIOD, tenants=shop.tenants, client=client) == (3, [])


# Stripe writes of a one-worker run, in order: basic's customer (1), test card (2), $0 plan (3), subscription
# (4), its three items (5-7), its invoice (8); then pro's customer (9) ... items (12-15), invoice (16).
# With four workers the three tenants' writes interleave: a kill leaves each somewhere else.
@pytest.mark.parametrize(
    ("workers", "killed_after"), [(1, 1), (1, 4), (1, 6), (1, 8), (1, 13), (1, 16), (4, 7), (4, 14)]
)
def test_a_run_killed_after_any_stripe_write_then_rerun_bills_each_tenant_once(
    workers: int,
    killed_after: int,
    shop: Shop,
    stripe_local: stripe.StripeClient,
    localstripe: str,
    artifacts_dir: Path,
    django_db_blocker: DjangoDbBlocker,
) -> None:
    paused = Path(settings.DATA_DIR, "billing-paused")
    paused.unlink(missing_ok=True)
    log = artifacts_dir / "billing-run-killed.log"
    concurrency = {"GATEHOUSE_BILLING_RUN_CONCURRENCY": str(workers)}
    with django_db_blocker.unblock():
        usage_september(shop)
        proc = billing_run(localstripe, log, **concurrency, **{PAUSE_AFTER_WRITES_ENV: str(killed_after)})
        try:
            wait_for(paused.exists, what="billing_run to pause", proc=proc, seconds=60)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        paused.unlink()
        assert InvoiceRun.objects.get(period=PERIOD, trigger="command").status == InvoiceRun.Status.RUNNING

        rerun = billing_run(localstripe, log, **concurrency)
        assert rerun.wait(timeout=120) == 0, log.read_text()[-3000:]

        assert_billed_once(shop, stripe_local)


def test_the_command_waits_for_an_unreachable_stripe_and_then_succeeds(
    shop: Shop, artifacts_dir: Path, django_db_blocker: DjangoDbBlocker, settings: Any
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = artifacts_dir / "billing-run-unreachable.log"
    log.unlink(missing_ok=True)
    with django_db_blocker.unblock():
        usage_september(shop)
        proc = billing_run(
            base, log, GATEHOUSE_BILLING_RUN_RETRY_SECONDS="0.5", GATEHOUSE_STRIPE_NETWORK_RETRIES="0"
        )
        wait_for(
            lambda: b"Stripe unavailable" in log.read_bytes(), what="a failed attempt", proc=proc, seconds=60
        )
        assert not Invoice.objects.filter(tenant__in=shop.tenants, period=PERIOD).exclude(
            stripe_invoice_id=""
        )
        server = start_localstripe(port, artifacts_dir / "localstripe-late.log")
        try:
            assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
            settings.STRIPE_API_BASE = base
            client = stripe.StripeClient(settings.STRIPE_API_KEY, base_addresses={"api": base})
            assert_billed_once(shop, client)
        finally:
            stop(server)


def test_the_celery_task_retries_while_stripe_is_unreachable_then_a_new_attempt_resumes(
    shop: Shop,
    stripe_local: stripe.StripeClient,
    localstripe: str,
    django_db_blocker: DjangoDbBlocker,
    settings: Any,
) -> None:
    with django_db_blocker.unblock():
        usage_september(shop)
        run = invoice_run_create(period=PERIOD, trigger="test")
        settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"
        settings.GATEHOUSE_STRIPE_NETWORK_RETRIES = 0
        settings.GATEHOUSE_BILLING_RUN_RETRIES = 2

        # Run eagerly, Celery retries at once (a worker would wait GATEHOUSE_BILLING_RUN_RETRY_SECONDS).
        first = invoice_run_task.apply(args=(run.pk,))

        assert first.state == "FAILURE"
        run.refresh_from_db()
        assert (run.status, run.attempts) == (InvoiceRun.Status.FAILED, 3)
        assert "Stripe unavailable" in run.last_error
        settings.STRIPE_API_BASE = localstripe
        assert invoice_run_task.apply(args=(run.pk,)).get() == InvoiceRun.Status.DONE
        assert_billed_once(shop, stripe_local)


def test_pause_hook_is_inert_without_its_variable() -> None:
    assert PAUSE_AFTER_WRITES_ENV not in os.environ
    time.sleep(0)
