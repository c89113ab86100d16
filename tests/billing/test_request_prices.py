"""A price per request (the BYOK fee's per-request part) from the ledger to Stripe: rollups keep it apart,
rating bills requests x it beside tokens x unit prices, invoice lines carry it, and reconciliation checks it
to the cent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import stripe
from django_tenants.utils import schema_context
from pytest_django import DjangoDbBlocker

from billing.models import Invoice, InvoiceLine, UsageRollup
from billing.rating import CENT, ZERO, cents, period_rate
from billing.reconcile import reconcile_period
from billing.rollups import rollup_period
from billing.selectors import usage_by_model
from gateway.models import RequestRecord
from gateway.pricing import UnitPrices
from tests.billing.shop import Shop, usage_add
from tests.billing.test_invoicing import PERIOD, run_period

DAY = datetime(2026, 9, 4, 9, tzinfo=UTC)
OWN_KEY = UnitPrices(Decimal(2), Decimal(2), Decimal("0.004"))  # $0.002 per 1k tokens + $0.004 a request


def test_a_price_per_request_is_billed_per_request_on_a_line_of_its_own(
    shop: Shop, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        byok = usage_add(shop.basic, DAY, "sim/fast", 10_000, 2_500, count=3, units=OWN_KEY)
        tokens = UnitPrices(OWN_KEY.input, OWN_KEY.output)
        tokens_only = usage_add(shop.basic, DAY, "sim/fast", 10_000, 2_500, units=tokens)
        hit = usage_add(shop.basic, DAY, "sim/fast", 10_000, 2_500, hit=True, units=OWN_KEY)
        rollup_period(shop.basic, PERIOD)

        rollups = UsageRollup.objects.filter(tenant=shop.basic).order_by("cache_status", "-requests")
        lines = {(line.kind, line.unit_request_price): line for line in period_rate(shop.basic, PERIOD).lines}
        (portal_row,) = usage_by_model(tenant=shop.basic, period=PERIOD)

    assert [(r.cache_status, r.requests, r.unit_request_price) for r in rollups] == [
        ("hit-exact", 1, Decimal("0.0004")),
        ("miss", 3, Decimal("0.004")),
        ("miss", 1, Decimal(0)),
    ]
    own = lines[(InvoiceLine.Kind.USAGE, Decimal("0.004"))]
    assert own.exact_amount == sum(event.price for event in byok) == Decimal("0.087")  # 0.075 + 3 x 0.004
    assert own.amount == Decimal("0.09")  # tokens alone would be $0.08
    assert own.description == (
        "sim/fast: 30,000 input tokens x $2.00/1M + 7,500 output tokens x $2.00/1M"
        " + 3 requests x $0.004/request"
    )
    assert lines[(InvoiceLine.Kind.USAGE, Decimal(0))].exact_amount == tokens_only[0].price
    assert lines[(InvoiceLine.Kind.CACHE_HITS, Decimal("0.0004"))].exact_amount == hit[0].price
    assert portal_row.amount == cents(sum((event.price for event in [*byok, *tokens_only, *hit]), Decimal(0)))


def test_a_line_priced_only_per_request_says_so(shop: Shop, django_db_blocker: DjangoDbBlocker) -> None:
    with django_db_blocker.unblock():
        usage_add(shop.basic, DAY, "sim/fast", 900, 100, count=1_200, units=UnitPrices(ZERO, ZERO, CENT / 10))
        rollup_period(shop.basic, PERIOD)

        usage, _fee = period_rate(shop.basic, PERIOD).lines

    assert (usage.description, usage.amount) == ("sim/fast: 1,200 requests x $0.001/request", Decimal("1.20"))


def test_request_prices_reach_stripe_and_reconcile_to_the_cent(
    shop: Shop, stripe_local: stripe.StripeClient, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        byok = usage_add(shop.basic, DAY, "sim/fast", 10_000, 2_500, count=3, units=OWN_KEY)
        run_period(shop)
        invoice = Invoice.objects.get(tenant=shop.basic, period=PERIOD)
        line = invoice.lines.get(kind=InvoiceLine.Kind.USAGE)

        assert (line.unit_request_price, line.requests, line.amount) == (
            Decimal("0.004"),
            3,
            Decimal("0.09"),
        )
        assert invoice.total == Decimal("10.09")  # with the $10 base fee
        assert reconcile_period(PERIOD, tenants=[shop.basic], client=stripe_local) == (1, [])

        with schema_context(shop.basic.schema_name):  # a ledger row changed after invoicing
            RequestRecord.objects.filter(request_id=byok[0].request_id).update(
                unit_request_price=Decimal("0.003")
            )
        _, differences = reconcile_period(PERIOD, tenants=[shop.basic], client=stripe_local)

    details = {difference.detail for difference in differences}
    group = "sim/fast simulator miss at 2/2 per 1M + 0.003 per request"
    assert f"{group} requests: ledger 1, rollups 0" in details
