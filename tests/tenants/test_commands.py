"""The management commands of DESIGN.md: create_tenant, create_api_key, seed_demo."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.models import InvoiceRun
from billing.periods import period_previous
from billing.reconcile import Difference, reconcile_tenant
from billing.rollups import rollup_period
from gateway.keys import api_key_authenticate
from gateway.models import RequestRecord
from tenants.models import Tenant, User

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_tenant_prints_the_portal_url_and_owner_login(world: object) -> None:
    printed = json.loads(
        run(
            "create_tenant",
            "--slug",
            "hooli",
            "--name",
            "Hooli",
            "--owner-email",
            "gavin@hooli.test",
            "--plan",
            "scale",
        )
    )

    assert printed["portal_url"] == "http://hooli.localhost:8000/"
    assert printed["plan"] == "scale"
    assert User.objects.get(email="gavin@hooli.test").check_password(printed["owner_password"])
    assert Tenant.objects.get(slug="hooli").schema_name == "t_hooli"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slug", "www", "--name", "W", "--owner-email", "w@w.test"], "reserved"),
        (["--slug", "acme", "--name", "A", "--owner-email", "a@a.test"], "taken"),
        (["--slug", "okay", "--name", "O", "--owner-email", "o@o.test", "--plan", "gold"], "Unknown plan"),
    ],
)
def test_create_tenant_reports_bad_input_as_a_command_error(
    world: object, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        run("create_tenant", *args)


def test_create_api_key_prints_a_working_key_once(acme: Tenant) -> None:
    raw = run("create_api_key", "--tenant", "acme", "--name", "cli").strip()

    identity = api_key_authenticate(raw)
    assert (identity.tenant, identity.api_key.name) == (acme, "cli")


def test_create_api_key_refuses_an_unknown_tenant(world: object) -> None:
    with pytest.raises(CommandError, match="No tenant"):
        run("create_api_key", "--tenant", "nobody")


def test_seed_demo_is_idempotent_and_keeps_a_working_key(
    world: object, settings: object, tmp_path: Path
) -> None:
    settings.DATA_DIR = tmp_path  # type: ignore[attr-defined]

    first = run("seed_demo", "--banner")
    second = run("seed_demo", "--banner")

    key = next(line.split()[-1] for line in first.splitlines() if "Demo API key" in line)
    assert key in second  # the same key, still valid, printed again
    assert api_key_authenticate(key).tenant.slug == "demo"
    assert "http://demo.localhost:8000/" in first
    assert "http://localhost:8000/console/" in first
    assert Tenant.objects.filter(slug="demo").count() == 1
    assert User.objects.get(email="operator@example.com").is_staff
    with schema_context("t_demo"):
        days = {r.created_at.date() for r in RequestRecord.objects.all()}
        assert len(days) >= 28
    # Last month is invoiced once (queued for the worker), and its history is rated like real requests.
    demo = Tenant.objects.get(slug="demo")
    last_month = period_previous(timezone.now())
    assert InvoiceRun.objects.filter(tenant=demo, period=last_month, trigger="demo").count() == 1
    rollup_period(demo, last_month)
    assert reconcile_tenant(demo, last_month, stripe=False) == [
        Difference("demo", "ledger vs invoice", "billable usage but no invoice for the period")
    ]
    assert (tmp_path / "demo-credentials.json").stat().st_mode & 0o777 == 0o600
