"""The portal's projection of a month in progress (pure: no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.models import InvoiceLine
from billing.rating import LineDraft, Rating
from billing.selectors import elapsed_share, pace_projection
from dashboards.templatetags.money import grouped, unit_price

START = datetime(2026, 4, 1, tzinfo=UTC)
END = datetime(2026, 5, 1, tzinfo=UTC)  # 30 days


def rating(*lines: tuple[str, str]) -> Rating:
    return Rating(currency="usd", lines=[LineDraft(kind, kind, Decimal(amount)) for kind, amount in lines])


def test_a_third_of_the_month_gone_triples_the_usage_and_keeps_the_fee() -> None:
    so_far = rating((InvoiceLine.Kind.USAGE, "10.00"), (InvoiceLine.Kind.BASE_FEE, "49.00"))

    assert pace_projection(rating=so_far, elapsed=Decimal(1) / 3) == Decimal("79.00")


def test_cache_hits_count_as_usage_and_the_allowance_used_so_far_stays() -> None:
    so_far = rating(
        (InvoiceLine.Kind.USAGE, "3.00"),
        (InvoiceLine.Kind.CACHE_HITS, "1.00"),
        (InvoiceLine.Kind.ALLOWANCE, "-1.00"),
    )

    assert pace_projection(rating=so_far, elapsed=Decimal("0.5")) == Decimal("7.00")


def test_the_minimum_top_up_is_replaced_by_usage_but_the_minimum_still_holds() -> None:
    small = rating((InvoiceLine.Kind.USAGE, "1.00"), (InvoiceLine.Kind.MINIMUM, "4.00"))
    large = rating((InvoiceLine.Kind.USAGE, "2.00"), (InvoiceLine.Kind.MINIMUM, "3.00"))

    assert pace_projection(rating=small, elapsed=Decimal("0.5")) == Decimal("5.00")  # 2.00 < the 5.00 minimum
    assert pace_projection(rating=large, elapsed=Decimal("0.25")) == Decimal("8.00")


def test_nothing_elapsed_or_the_whole_month_is_the_invoice_so_far() -> None:
    so_far = rating((InvoiceLine.Kind.USAGE, "2.00"), (InvoiceLine.Kind.BASE_FEE, "10.00"))

    assert pace_projection(rating=so_far, elapsed=Decimal(0)) == Decimal("12.00")
    assert pace_projection(rating=so_far, elapsed=Decimal(1)) == Decimal("12.00")


def test_the_projection_is_rounded_half_up_to_cents() -> None:
    so_far = rating((InvoiceLine.Kind.USAGE, "0.01"))

    assert pace_projection(rating=so_far, elapsed=Decimal(3) / 7) == Decimal("0.02")  # 0.0233


@pytest.mark.parametrize(
    ("since", "now", "share"),
    [
        (START, START + timedelta(days=10), Decimal(1) / 3),
        (START, START + timedelta(hours=1), Decimal(1) / 30),  # a pace is measured over a day at least
        (START + timedelta(days=20), START + timedelta(days=25), Decimal("0.5")),  # a tenant since the 21st
        (START, END + timedelta(days=1), Decimal(1)),
        (END - timedelta(hours=12), END - timedelta(hours=6), Decimal(1)),  # less than a day in the month
    ],
)
def test_elapsed_share(since: datetime, now: datetime, share: Decimal) -> None:
    assert elapsed_share(since=since, end=END, now=now) == share


@pytest.mark.parametrize(
    ("value", "shown"),
    [(Decimal("3.000000"), "3.00"), (Decimal("0.025500"), "0.0255"), (Decimal(12), "12.00"), (None, "")],
)
def test_unit_prices_keep_their_decimals_and_at_least_two(value: Decimal | None, shown: str) -> None:
    assert unit_price(value) == shown


def test_counts_are_grouped_by_thousands() -> None:
    assert (grouped(1_500_000), grouped(12)) == ("1,500,000", "12")
