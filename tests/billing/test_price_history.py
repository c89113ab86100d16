"""A catalogue price change mid-period: requests through the real gateway before it are billed at the old
price, after it at the new one, and the catalogue keeps the dated history."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
from django.utils import timezone
from django_tenants.utils import schema_context
from pytest_django import DjangoDbBlocker

from billing.models import PlanModelPrice
from billing.periods import period_of
from billing.rating import period_rate
from billing.rollups import rollup_period
from config.redis import redis_client
from gateway.catalog.models import CatalogModel, CatalogPrice
from gateway.keys import api_key_create
from gateway.metering.consumer import usage_consume_once
from gateway.models import RequestRecord
from tests.billing.shop import Shop

BODY = {"model": "sim/fast", "messages": [{"role": "user", "content": "Count to three"}], "max_tokens": 20}


def ask(gateway: str, key: str) -> None:
    response = httpx.post(
        f"{gateway}/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {key}"}, timeout=30
    )
    assert response.status_code == 200, response.text


def records(shop: Shop) -> list[RequestRecord]:
    usage_consume_once(redis_client(), "price-history")
    with schema_context(shop.basic.schema_name):
        return list(RequestRecord.objects.order_by("created_at"))


def test_usage_before_and_after_a_price_change_is_billed_at_each_price(
    shop: Shop, live_server_url: str, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        key = api_key_create(tenant=shop.basic, name="prices").raw_key
        model = CatalogModel.objects.get(name="sim/fast")
        old = (model.input_price_per_mtok, model.output_price_per_mtok)
        try:
            ask(live_server_url, key)
            ask(live_server_url, key)
            model.input_price_per_mtok, model.output_price_per_mtok = Decimal("0.50"), Decimal("2.00")
            model.save()  # dated in the history; every gateway process reloads its catalogue over pub/sub

            deadline = time.monotonic() + 15
            while records(shop)[-1].unit_input_price != Decimal("0.6") and time.monotonic() < deadline:
                ask(live_server_url, key)
            ask(live_server_url, key)
            ledger = records(shop)
        finally:
            model.input_price_per_mtok, model.output_price_per_mtok = old
            model.save()

        before = [r for r in ledger if r.unit_input_price == Decimal("0.12")]  # $0.10/$0.40 + 20 %
        after = [r for r in ledger if r.unit_input_price == Decimal("0.6")]  # $0.50/$2.00 + 20 %
        assert (len(before), len(before) + len(after)) == (2, len(ledger))
        assert len(after) >= 2
        assert all(r.created_at < a.created_at for r in before for a in after)
        assert {(r.unit_output_price, r.provider_cost > 0) for r in after} == {(Decimal("2.4"), True)}

        period = period_of(timezone.now())
        rollup_period(shop.basic, period)
        lines = {line.unit_input_price: line for line in period_rate(shop.basic, period).lines if line.model}
        assert set(lines) == {Decimal("0.12"), Decimal("0.6")}
        for unit, group in ((Decimal("0.12"), before), (Decimal("0.6"), after)):
            line = lines[unit]
            assert (line.input_tokens, line.output_tokens) == (
                sum(r.input_tokens for r in group),
                sum(r.output_tokens for r in group),
            )
            assert line.exact_amount == sum((r.price for r in group), Decimal(0))

        history = list(CatalogPrice.objects.filter(model=model).order_by("effective_from"))
        prices = [(p.input_price_per_mtok, p.output_price_per_mtok) for p in history]
        assert prices[-3:] == [old, (Decimal("0.5"), Decimal("2")), old]


def test_a_plan_price_edit_applies_to_the_next_requests_of_its_tenants(
    shop: Shop, live_server_url: str, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        key = api_key_create(tenant=shop.pro, name="plan prices").raw_key

        def last_unit_price() -> Decimal:
            ask(live_server_url, key)
            usage_consume_once(redis_client(), "plan-prices")
            with schema_context(shop.pro.schema_name):
                return RequestRecord.objects.latest("created_at").unit_input_price

        assert last_unit_price() == Decimal("0.11")  # $0.10 + the plan's 10 % markup
        rule = PlanModelPrice.objects.create(
            plan=shop.pro.plan,
            model_name="sim/fast",
            rule="fixed",
            input_price_per_mtok=1,
            output_price_per_mtok=2,
        )
        try:
            deadline = time.monotonic() + 15
            while last_unit_price() != Decimal(1) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert last_unit_price() == Decimal(1)
        finally:
            rule.delete()
