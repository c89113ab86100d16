"""Meters mode (billing.meters): the outbox of meter events from rollups, and its sender through the real
`stripe` SDK against a fake HTTP client answering from Stripe-format fixtures (tests/fixtures/stripe/)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from pytest_django import Settings

from billing.meters import day_timestamp, meter_events_queue, meter_events_send
from billing.models import MeterEvent, StripeCustomer, UsageRollup
from tenants.models import Tenant
from tests.billing.fake_stripe import CONNECTION_ERROR, FakeStripe, Sent, client

NOW = datetime(2026, 3, 20, 1, 0, tzinfo=UTC)  # settled: every day up to 18 March (19 March settles at 02:00)
DAY = date(2026, 3, 18)
CUSTOMER = "cus_GhMeterTest01"


@pytest.fixture(autouse=True)
def _meters(settings: Settings) -> None:
    settings.GATEHOUSE_BILLING_MODE = "meters"
    settings.GATEHOUSE_METER_EVENT_NAME = "gatehouse_usage"
    settings.GATEHOUSE_METER_UNIT = "0.0001"
    settings.GATEHOUSE_METER_SETTLE_HOURS = 2


@pytest.fixture
def customer(acme: Tenant) -> StripeCustomer:
    return StripeCustomer.objects.create(tenant=acme, customer_id=CUSTOMER)


def usage(
    tenant: Tenant, day: date, input_tokens: int, output_tokens: int = 0, *, cache: str = "miss"
) -> None:
    """The day's rollup row at $2.50 / $10.00 per 1M tokens (cache hits at a tenth), created or recomputed."""
    unit_in, unit_out = (
        (Decimal("2.5"), Decimal("10")) if cache == "miss" else (Decimal("0.25"), Decimal("1"))
    )
    UsageRollup.objects.update_or_create(
        tenant=tenant,
        day=day,
        model="gpt-4o",
        provider="openai",
        cache_status=cache,
        unit_input_price=unit_in,
        unit_output_price=unit_out,
        defaults={"input_tokens": input_tokens, "output_tokens": output_tokens, "computed_at": NOW},
    )


def pending(tenant: Tenant, day: date, value: int, *, sequence: int = 0) -> MeterEvent:
    return MeterEvent.objects.create(
        identifier=f"gh-{tenant.pk}-{day:%Y%m%d}-{sequence}",
        tenant=tenant,
        day=day,
        sequence=sequence,
        event_name="gatehouse_usage",
        stripe_customer_id=CUSTOMER,
        value=value,
        timestamp=day_timestamp(day),
    )


def events(tenant: Tenant) -> list[tuple[date, int, int, str]]:
    return [
        (row.day, row.sequence, row.value, row.identifier)
        for row in MeterEvent.objects.filter(tenant=tenant).order_by("day", "sequence")
    ]


# Queue


def test_queue_creates_one_event_per_closed_day_with_the_rated_value(
    acme: Tenant, globex: Tenant, customer: StripeCustomer
) -> None:
    usage(acme, DAY, 1_000_000, 100_000)  # $2.50 + $1.00
    usage(acme, DAY, 123_457, cache="hit")  # $0.03086425
    usage(acme, DAY - timedelta(days=1), 40_000)  # $0.10
    usage(globex, DAY, 1_000_000)  # no Stripe customer: not metered

    assert meter_events_queue(NOW) == 2

    prefix = f"gh-{acme.pk}"
    assert events(acme) == [
        (DAY - timedelta(days=1), 0, 1000, f"{prefix}-20260317-0"),
        (DAY, 0, 35309, f"{prefix}-20260318-0"),  # 35308.6425 units of $0.0001
    ]
    row = MeterEvent.objects.get(identifier=f"{prefix}-20260318-0")
    assert row.status == MeterEvent.Status.PENDING
    assert row.event_name == "gatehouse_usage"
    assert row.stripe_customer_id == CUSTOMER
    assert row.timestamp == int(datetime(2026, 3, 18, 12, tzinfo=UTC).timestamp())
    assert events(globex) == []


def test_a_days_value_includes_the_price_per_request_of_byok_traffic(
    acme: Tenant, customer: StripeCustomer
) -> None:
    usage(acme, DAY, 40_000)  # $0.10
    UsageRollup.objects.create(  # 7 requests on the tenant's own key: $2 per 1M tokens + $0.0015 each
        tenant=acme,
        day=DAY,
        model="gpt-4o",
        provider="openai",
        cache_status="miss",
        unit_input_price=Decimal(2),
        unit_output_price=Decimal(2),
        unit_request_price=Decimal("0.0015"),
        requests=7,
        input_tokens=3_000,
        output_tokens=500,
        computed_at=NOW,
    )

    meter_events_queue(NOW)

    assert [value for _, _, value, _ in events(acme)] == [1175]  # $0.10 + $0.007 + $0.0105


def test_queue_rounds_half_up_to_the_meter_unit(acme: Tenant, customer: StripeCustomer) -> None:
    usage(acme, DAY, 20)  # $0.00005: half a unit

    meter_events_queue(NOW)

    assert [value for _, _, value, _ in events(acme)] == [1]


def test_queue_twice_creates_nothing_new(acme: Tenant, customer: StripeCustomer) -> None:
    usage(acme, DAY, 1_000_000)

    assert meter_events_queue(NOW) == 1
    assert meter_events_queue(NOW + timedelta(minutes=5)) == 0
    assert len(events(acme)) == 1


def test_later_usage_for_a_sent_day_queues_the_difference(acme: Tenant, customer: StripeCustomer) -> None:
    usage(acme, DAY, 1_000_000)  # $2.50
    meter_events_queue(NOW)
    assert meter_events_send(client(FakeStripe("meter_event_created")), NOW) == 1

    usage(acme, DAY, 1_000_020)  # the day's rollups recomputed with late records: $2.50005
    assert meter_events_queue(NOW + timedelta(hours=1)) == 1

    prefix = f"gh-{acme.pk}-20260318"
    assert events(acme) == [(DAY, 0, 25000, f"{prefix}-0"), (DAY, 1, 1, f"{prefix}-1")]
    fake = FakeStripe("meter_event_created")
    assert meter_events_send(client(fake), NOW + timedelta(hours=1)) == 1
    assert [(sent.form["identifier"], sent.form["payload[value]"]) for sent in fake.requests] == [
        (f"{prefix}-1", "1")
    ]


def test_open_days_are_not_queued(acme: Tenant, customer: StripeCustomer) -> None:
    usage(acme, DAY + timedelta(days=1), 1_000_000)  # 19 March: ended at 00:00, settles at 02:00
    usage(acme, DAY + timedelta(days=2), 1_000_000)  # 20 March: today

    assert meter_events_queue(NOW) == 0
    assert meter_events_queue(NOW + timedelta(hours=1)) == 1
    assert [day for day, _, _, _ in events(acme)] == [DAY + timedelta(days=1)]


def test_days_past_stripes_35_day_window_are_not_queued(acme: Tenant, customer: StripeCustomer) -> None:
    usage(acme, date(2026, 2, 12), 1_000_000)  # noon 35 days and 13 hours before NOW
    usage(acme, date(2026, 2, 13), 1_000_000)  # noon 34 days and 13 hours before NOW

    assert meter_events_queue(NOW) == 1
    assert [day for day, _, _, _ in events(acme)] == [date(2026, 2, 13)]


def test_less_usage_than_reported_sends_no_negative_event(
    acme: Tenant, customer: StripeCustomer, caplog: pytest.LogCaptureFixture
) -> None:
    usage(acme, DAY, 1_000_000)
    meter_events_queue(NOW)
    usage(acme, DAY, 600_000)  # records removed from the ledger: $1.50 of the $2.50 reported

    with caplog.at_level(logging.WARNING, logger="billing.meters"):
        assert meter_events_queue(NOW + timedelta(hours=1)) == 0

    assert [value for _, _, value, _ in events(acme)] == [25000]
    assert "10000 units below what was reported" in caplog.text


# Send


def test_send_posts_the_documented_request_and_marks_the_event_sent(
    acme: Tenant, customer: StripeCustomer
) -> None:
    usage(acme, DAY, 1_000_000)
    meter_events_queue(NOW)
    fake = FakeStripe("meter_event_created")

    assert meter_events_send(client(fake), NOW) == 1

    identifier = f"gh-{acme.pk}-20260318-0"
    assert fake.requests == [
        Sent(
            method="POST",
            path="/v1/billing/meter_events",
            form={
                "event_name": "gatehouse_usage",
                "identifier": identifier,
                "timestamp": str(int(datetime(2026, 3, 18, 12, tzinfo=UTC).timestamp())),
                "payload[stripe_customer_id]": CUSTOMER,
                "payload[value]": "25000",
            },
            idempotency_key=f"gh-me-{identifier}-1",  # a new key per attempt
        )
    ]
    row = MeterEvent.objects.get(identifier=identifier)
    assert (row.status, row.sent_at, row.first_attempt_at, row.attempts) == (
        MeterEvent.Status.SENT,
        NOW,
        NOW,
        1,
    )
    assert row.last_error == ""
    assert meter_events_send(client(FakeStripe()), NOW + timedelta(hours=1)) == 0  # nothing left to send


@pytest.mark.parametrize("failure", ["rate_limited", CONNECTION_ERROR])
def test_send_retries_with_backoff_and_the_same_identifier(acme: Tenant, failure: str) -> None:
    row = pending(acme, DAY, 25000)
    fake = FakeStripe(failure, "meter_event_created")

    assert meter_events_send(client(fake), NOW) == 0
    row.refresh_from_db()
    assert (row.status, row.attempts, row.next_attempt_at) == (
        MeterEvent.Status.PENDING,
        1,
        NOW + timedelta(seconds=60),
    )
    assert meter_events_send(client(fake), NOW + timedelta(seconds=30)) == 0  # not due yet
    assert len(fake.requests) == 1

    assert meter_events_send(client(fake), NOW + timedelta(seconds=61)) == 1

    first, second = fake.requests
    assert (second.method, second.path, second.form) == (first.method, first.path, first.form)
    assert second.form["identifier"] == row.identifier  # what Stripe deduplicates on
    # A new Idempotency-Key per attempt: Stripe would replay a saved 5xx for the old one.
    assert (first.idempotency_key, second.idempotency_key) == (
        f"gh-me-{row.identifier}-1",
        f"gh-me-{row.identifier}-2",
    )
    row.refresh_from_db()
    assert (row.status, row.attempts, row.first_attempt_at) == (MeterEvent.Status.SENT, 2, NOW)


def test_backoff_doubles_up_to_an_hour(acme: Tenant) -> None:
    row = pending(acme, DAY, 25000)
    fake = FakeStripe(*[CONNECTION_ERROR] * 8)
    delays = []
    moment = NOW
    for _ in range(8):
        meter_events_send(client(fake), moment)
        row.refresh_from_db()
        assert row.next_attempt_at is not None
        delays.append(int((row.next_attempt_at - moment).total_seconds()))
        moment = row.next_attempt_at

    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_unknown_outcome_past_the_dedup_window_becomes_uncertain_without_a_request(acme: Tenant) -> None:
    row = pending(acme, DAY, 25000)
    fake = FakeStripe(CONNECTION_ERROR)
    meter_events_send(client(fake), NOW)

    assert meter_events_send(client(fake), NOW + timedelta(hours=25)) == 0

    assert len(fake.requests) == 1
    row.refresh_from_db()
    assert row.status == MeterEvent.Status.UNCERTAIN


def test_a_crash_mid_request_leaves_the_outcome_unknown(acme: Tenant) -> None:
    row = pending(acme, DAY, 25000)
    fake = FakeStripe()  # no answer: the request raises, as a process killed mid-request would stop

    with pytest.raises(AssertionError, match="unexpected request"):
        meter_events_send(client(fake), NOW)

    row.refresh_from_db()
    assert (row.status, row.attempts, row.first_attempt_at) == (MeterEvent.Status.PENDING, 1, NOW)
    assert meter_events_send(client(fake), NOW + timedelta(hours=25)) == 0
    row.refresh_from_db()
    assert row.status == MeterEvent.Status.UNCERTAIN
    assert len(fake.requests) == 1


def test_a_refusal_keeps_the_event_pending_with_a_long_backoff(acme: Tenant) -> None:
    row = pending(acme, DAY, 25000)
    fake = FakeStripe("meter_event_timestamp_too_old", "meter_event_created")

    assert meter_events_send(client(fake), NOW) == 0

    row.refresh_from_db()
    assert (row.status, row.next_attempt_at) == (MeterEvent.Status.PENDING, NOW + timedelta(hours=6))
    assert "HTTP 400" in row.last_error
    assert "35 calendar days" in row.last_error
    assert meter_events_send(client(fake), NOW + timedelta(hours=1)) == 0
    # Refused means it did not land: resending after Stripe's dedup window is safe.
    assert meter_events_send(client(fake), NOW + timedelta(hours=30)) == 1
    assert len(fake.requests) == 2


def test_a_refusal_after_an_unknown_outcome_still_ends_uncertain(acme: Tenant) -> None:
    row = pending(acme, DAY, 25000)
    fake = FakeStripe(CONNECTION_ERROR, "meter_event_timestamp_too_old")
    meter_events_send(client(fake), NOW)
    meter_events_send(client(fake), NOW + timedelta(seconds=61))  # refused: the first attempt may still count

    assert meter_events_send(client(fake), NOW + timedelta(hours=25)) == 0

    assert len(fake.requests) == 2
    row.refresh_from_db()
    assert row.status == MeterEvent.Status.UNCERTAIN


def test_events_older_than_35_days_expire_without_a_request(acme: Tenant) -> None:
    old = pending(acme, date(2026, 2, 12), 25000)  # noon 35 days and 13 hours before NOW
    recent = pending(acme, date(2026, 2, 13), 25000)
    fake = FakeStripe("meter_event_created")

    assert meter_events_send(client(fake), NOW) == 1

    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.status, old.attempts) == (MeterEvent.Status.EXPIRED, 0)
    assert recent.status == MeterEvent.Status.SENT
    assert [sent.form["identifier"] for sent in fake.requests] == [recent.identifier]


def test_a_duplicate_identifier_refusal_counts_as_sent(acme: Tenant) -> None:
    row = pending(acme, DAY, 25000)
    fake = FakeStripe(CONNECTION_ERROR, "meter_event_duplicate_identifier")
    meter_events_send(client(fake), NOW)

    assert meter_events_send(client(fake), NOW + timedelta(minutes=2)) == 1

    row.refresh_from_db()
    assert (row.status, row.sent_at, row.last_error) == (
        MeterEvent.Status.SENT,
        NOW + timedelta(minutes=2),
        "",
    )


def test_send_takes_the_oldest_events_first(acme: Tenant) -> None:
    newer = pending(acme, DAY, 100)
    older = pending(acme, DAY - timedelta(days=3), 200)
    fake = FakeStripe("meter_event_created")

    assert meter_events_send(client(fake), NOW, limit=1) == 1

    assert [sent.form["identifier"] for sent in fake.requests] == [older.identifier]
    newer.refresh_from_db()
    assert newer.status == MeterEvent.Status.PENDING
