"""The console's plan pages: create and edit a plan with its per-model prices (validated, saved together,
gateways told), and move a tenant to another plan."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib import admin
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.test import RequestFactory

from billing import plans
from billing.models import Plan, PlanAssignment, PlanModelPrice
from gateway.pricing import UnitPrices
from tenants.models import Tenant, User
from tests.conftest import signed_in

pytestmark = pytest.mark.django_db

PREFIX = "model_prices"
PLAN = {
    "name": "Team",
    "slug": "team",
    "monthly_fee": "25.00",
    "currency": "EUR",
    "markup_percent": "15",
    "cache_hit_percent": "10",
    "byok_fee_per_1k_tokens": "0.0025",
    "byok_fee_per_request": "0.001",
    "included_amount": "5.00",
    "included_tokens": "100000",
    "minimum_monthly_charge": "0",
    "default_rpm": "100",
    "default_tpm": "50000",
    "default_concurrency": "10",
    "default_monthly_budget": "",
    "default_monthly_token_cap": "",
    "is_public": "on",
}


@pytest.fixture
def changed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The plans whose tenants' gateways were told to reload prices."""
    calls: list[str] = []
    monkeypatch.setattr(plans, "plan_changed", lambda plan: calls.append(plan.slug))  # called by signals
    return calls


def body(plan: dict[str, str], *rows: dict[str, str], initial: int = 0) -> dict[str, str]:
    """The plan form's POST: the plan's fields, one formset row per dict (`initial` existing rows first)."""
    data = {
        **plan,
        f"{PREFIX}-TOTAL_FORMS": str(len(rows)),
        f"{PREFIX}-INITIAL_FORMS": str(initial),
        f"{PREFIX}-MIN_NUM_FORMS": "0",
        f"{PREFIX}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data.update({f"{PREFIX}-{index}-{name}": value for name, value in row.items()})
    return data


def fixed(model: str, input_price: str, output_price: str, **extra: str) -> dict[str, str]:
    row = {"model_name": model, "rule": "fixed", "markup_percent": ""}
    return {**row, "input_price_per_mtok": input_price, "output_price_per_mtok": output_price, **extra}


def markup(model: str, percent: str, **extra: str) -> dict[str, str]:
    row = {"model_name": model, "rule": "markup", "markup_percent": percent}
    return {**row, "input_price_per_mtok": "", "output_price_per_mtok": "", **extra}


def test_an_operator_creates_a_plan_with_its_model_prices(operator: User, changed: list[str]) -> None:
    client = signed_in("localhost", operator.email)

    response = client.post(
        "/console/plans/new/", body(PLAN, fixed("sim/smart", "3", "12.5"), markup("sim/code", "5"))
    )

    assert (response.status_code, response["Location"]) == (302, "/console/plans/team/")
    plan = Plan.objects.get(slug="team")
    assert (plan.name, plan.monthly_fee, plan.currency) == ("Team", Decimal("25.00"), "eur")
    assert (plan.included_amount, plan.included_tokens, plan.is_default) == (Decimal("5.00"), 100_000, False)
    assert (plan.byok_fee_per_1k_tokens, plan.byok_fee_per_request) == (Decimal("0.0025"), Decimal("0.001"))
    prices = {p.model_name: p for p in plan.model_prices.all()}
    smart, code = prices["sim/smart"], prices["sim/code"]
    assert (smart.rule, smart.input_price_per_mtok) == ("fixed", Decimal(3))
    assert smart.output_price_per_mtok == Decimal("12.5")
    assert (code.rule, code.markup_percent, code.input_price_per_mtok) == ("markup", Decimal(5), None)
    assert set(changed) == {"team"}  # the plan's save and its prices' saves
    listing = client.get("/console/plans/").content.decode()
    assert 'href="/console/plans/team/"' in listing
    assert "25.00 EUR" in listing
    assert "0.0025/1k tokens + 0.001/request" in listing


@pytest.mark.parametrize(
    ("row", "field", "error"),
    [
        (fixed("sim/smart", "3", ""), "output_price_per_mtok", "A fixed price per 1m tokens needs this."),
        (fixed("sim/smart", "", "1"), "input_price_per_mtok", "A fixed price per 1m tokens needs this."),
        (markup("sim/smart", ""), "markup_percent", "A markup over provider cost needs this."),
        (markup("sim/smart", "-1"), "markup_percent", "greater than or equal to 0"),
        (fixed("sim/smart", "-0.5", "1"), "input_price_per_mtok", "greater than or equal to 0"),
        (fixed("no/such-model", "1", "1"), "model_name", "Select a valid choice."),
        (fixed("", "1", "1"), "model_name", "This field is required."),
    ],
)
def test_a_bad_model_price_is_a_form_error_and_nothing_is_saved(
    operator: User, changed: list[str], row: dict[str, str], field: str, error: str
) -> None:
    response = signed_in("localhost", operator.email).post("/console/plans/new/", body(PLAN, row))

    assert response.status_code == 400
    [form] = response.context["prices"].forms
    assert error in " ".join(form.errors[field])
    assert not Plan.objects.filter(slug="team").exists()
    assert changed == []


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("monthly_fee", "-1", "greater than or equal to 0"),
        ("included_amount", "-0.01", "greater than or equal to 0"),
        ("byok_fee_per_1k_tokens", "-0.0001", "greater than or equal to 0"),
        ("byok_fee_per_request", "-1", "greater than or equal to 0"),
        ("currency", "e1", "three-letter"),
        ("slug", "new", "taken by the console"),
        ("slug", "starter", "already exists"),
        ("default_rpm", "-5", "greater than or equal to 0"),
    ],
)
def test_a_bad_plan_field_is_a_form_error(operator: User, field: str, value: str, error: str) -> None:
    client = signed_in("localhost", operator.email)

    response = client.post("/console/plans/new/", body({**PLAN, field: value}))

    assert response.status_code == 400
    assert error in " ".join(response.context["form"].errors[field])
    assert not Plan.objects.filter(name="Team").exists()


def test_the_same_model_twice_is_refused(operator: User) -> None:
    rows = (fixed("sim/smart", "1", "1"), markup("sim/smart", "3"))

    response = signed_in("localhost", operator.email).post("/console/plans/new/", body(PLAN, *rows))

    assert response.status_code == 400
    assert "Please correct the duplicate data for model_name." in response.context["prices"].non_form_errors()


def test_an_operator_changes_removes_and_adds_model_prices(operator: User, changed: list[str]) -> None:
    client = signed_in("localhost", operator.email)
    client.post("/console/plans/new/", body(PLAN, markup("sim/smart", "5"), markup("sim/code", "7")))
    smart, code = PlanModelPrice.objects.filter(plan__slug="team").order_by("model_name")[::-1]
    assert (smart.model_name, code.model_name) == ("sim/smart", "sim/code")
    edited = {key: value for key, value in PLAN.items() if key != "slug"}
    rows = (
        {**fixed("sim/smart", "2", "8"), "id": str(smart.pk)},
        {**markup("sim/code", "7"), "id": str(code.pk), "DELETE": "on"},
        markup("sim/fast", "0"),
    )

    response = client.post("/console/plans/team/", body({**edited, "name": "Team 2"}, *rows, initial=2))

    assert (response.status_code, response["Location"]) == (302, "/console/plans/team/")
    plan = Plan.objects.get(slug="team")
    assert plan.name == "Team 2"
    prices = {p.model_name: p for p in plan.model_prices.all()}
    assert sorted(prices) == ["sim/fast", "sim/smart"]
    assert prices["sim/smart"].rule == "fixed"
    assert prices["sim/smart"].markup_percent is None  # the rule no longer uses it
    assert prices["sim/smart"].input_price_per_mtok == Decimal(2)
    assert prices["sim/fast"].markup_percent == Decimal(0)
    assert set(changed) == {"team"}
    page = client.get("/console/plans/team/").content.decode()
    assert "Plan Team 2 saved; gateways reload its prices." in page
    row = page[page.index('<tr data-model="sim/smart">') :]
    assert 'name="model_prices-1-input_price_per_mtok" value="2.000000"' in row[: row.index("</tr>")]


def test_making_a_plan_the_default_takes_the_flag_from_the_previous_one(operator: User) -> None:
    client = signed_in("localhost", operator.email)

    assert client.post("/console/plans/new/", body({**PLAN, "is_default": "on"})).status_code == 302

    assert list(Plan.objects.filter(is_default=True).values_list("slug", flat=True)) == ["team"]
    edited = {key: value for key, value in PLAN.items() if key != "slug"}
    refused = client.post("/console/plans/team/", body(edited))
    assert refused.status_code == 400
    assert "make another plan the default instead" in refused.content.decode()
    assert Plan.objects.get(slug="team").is_default


def test_an_unknown_plan_is_a_404(operator: User) -> None:
    assert signed_in("localhost", operator.email).get("/console/plans/nothing/").status_code == 404


def test_an_operator_moves_a_tenant_to_another_plan(operator: User, acme: Tenant) -> None:
    client = signed_in("localhost", operator.email)
    listing = client.get("/console/").content.decode()
    assert 'action="/console/tenants/acme/plan/"' in listing
    assert '<option value="starter" selected>Starter</option>' in listing

    response = client.post("/console/tenants/acme/plan/", {"plan": "scale"})

    assert (response.status_code, response["Location"]) == (302, "/console/")
    acme.refresh_from_db()
    assert acme.plan.slug == "scale"
    latest = PlanAssignment.objects.filter(tenant=acme).latest("starts_at")
    assert latest.plan.slug == "scale"
    assert "Acme Corp is on the Scale plan from now on." in client.get("/console/").content.decode()


def test_moving_a_tenant_to_its_own_plan_or_an_unknown_one_changes_nothing(
    operator: User, acme: Tenant
) -> None:
    client = signed_in("localhost", operator.email)
    before = PlanAssignment.objects.filter(tenant=acme).count()

    assert client.post("/console/tenants/acme/plan/", {"plan": "starter"}).status_code == 302
    assert client.post("/console/tenants/acme/plan/", {"plan": "gold"}).status_code == 400
    assert client.post("/console/tenants/nobody/plan/", {"plan": "scale"}).status_code == 404
    assert client.get("/console/tenants/acme/plan/").status_code == 405

    assert PlanAssignment.objects.filter(tenant=acme).count() == before
    assert Tenant.objects.get(pk=acme.pk).plan.slug == "starter"


def test_plan_changes_are_closed_to_non_staff(acme: Tenant) -> None:
    client = signed_in("localhost", "alice@acme.test")

    assert client.post("/console/tenants/acme/plan/", {"plan": "scale"}).status_code == 302
    assert client.post("/console/plans/new/", body(PLAN)).status_code == 302

    assert Tenant.objects.get(pk=acme.pk).plan.slug == "starter"
    assert not Plan.objects.filter(slug="team").exists()


def test_a_tenant_cannot_move_to_a_plan_in_another_currency(operator: User, acme: Tenant) -> None:
    Plan.objects.create(slug="euro", name="Euro", currency="eur")
    client = signed_in("localhost", operator.email)

    response = client.post("/console/tenants/acme/plan/", {"plan": "euro"})

    assert (response.status_code, response["Location"]) == (302, "/console/")
    assert Tenant.objects.get(pk=acme.pk).plan.slug == "starter"
    assert (
        "cannot move to the Euro plan: Euro bills in EUR, the tenant in USD."
        in client.get("/console/").content.decode()
    )


def test_the_currency_of_a_plan_with_tenants_stays(operator: User, acme: Tenant) -> None:
    client = signed_in("localhost", operator.email)
    starter = Plan.objects.get(slug="starter")
    values = {name: getattr(starter, name) for name in PLAN if name not in ("slug", "is_public")}
    fields = {name: "" if value is None else str(value) for name, value in values.items()}

    response = client.post("/console/plans/starter/", body({**fields, "currency": "eur", "is_public": "on"}))

    assert response.status_code == 400
    assert (
        "Tenants are or were on this plan and billed in usd" in response.context["form"].errors["currency"][0]
    )
    assert Plan.objects.get(slug="starter").currency == "usd"
    unused = Plan.objects.create(slug="unused", name="Unused")
    assert client.post("/console/plans/unused/", body({**fields, "currency": "eur"})).status_code == 302
    unused.refresh_from_db()
    assert unused.currency == "eur"


def test_an_operator_changes_a_plans_byok_fee_and_gateways_price_with_it(
    operator: User, changed: list[str]
) -> None:
    client = signed_in("localhost", operator.email)
    client.post("/console/plans/new/", body(PLAN))
    edited = {key: value for key, value in PLAN.items() if key != "slug"}
    fees = {"byok_fee_per_1k_tokens": "0.005", "byok_fee_per_request": "0"}

    response = client.post("/console/plans/team/", body({**edited, **fees}))

    assert response.status_code == 302
    pricing = plans.plan_pricing_load(Plan.objects.get(slug="team"))
    assert pricing.byok_unit_prices() == UnitPrices(Decimal(5), Decimal(5), Decimal(0))
    assert changed.count("team") >= 2  # created, then edited: each save tells the gateways


def test_the_django_admin_edits_the_byok_fees_and_refuses_negative_ones(acme: Tenant) -> None:
    plan = Plan.objects.get(slug="starter")
    form_class = admin.site.get_model_admin(Plan).get_form(RequestFactory().get("/"), plan)
    data = {**model_to_dict(plan), "byok_fee_per_1k_tokens": "0.002", "byok_fee_per_request": "-0.01"}
    data = {key: "" if value is None else value for key, value in data.items()}

    form = form_class(data, instance=plan)

    assert not form.is_valid()
    assert list(form.errors) == ["byok_fee_per_request"]
    assert "greater than or equal to 0" in form.errors["byok_fee_per_request"][0]
    with pytest.raises(IntegrityError), transaction.atomic():  # the database refuses any other writer's
        Plan.objects.filter(pk=plan.pk).update(byok_fee_per_1k_tokens=Decimal("-0.01"))
