"""Meters mode (GATEHOUSE_BILLING_MODE=meters): each tenant's billed usage of each closed UTC day, reported to
one Stripe Billing Meter through an outbox of MeterEvent rows (docs/BILLING-METERS.md).

The meter's unit is GATEHOUSE_METER_UNIT of currency (default 0.0001, a hundredth of a cent). A day's value
is its rollups' exact usage amount in those units, rounded half-up; each new row carries the difference
between that and what the day's rows already hold, so rounding never accumulates and usage that arrives
late for a reported day becomes a new row (the next `sequence`, its own identifier).

Stripe's windows shape the sender: it refuses timestamps older than 35 days (older rows become EXPIRED)
and deduplicates an `identifier` for at least 24 hours, so a row whose earlier attempt may have reached
Stripe is resent only inside that window; past it, the row becomes UNCERTAIN for an operator to settle.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from billing import stripe_api
from billing.models import MeterEvent, StripeCustomer, UsageRollup
from billing.rating import ZERO, usage_exact

logger = logging.getLogger(__name__)

# Stripe refuses meter event timestamps older than this (docs: "within the past 35 calendar days").
BACKDATE_LIMIT = timedelta(days=35)
# Stripe deduplicates identifiers for "a rolling period of at least 24 hours" from when it received the
# event; we resend a possibly-delivered row only this long after its first attempt (the hour's margin
# covers request time and the SDK's own retries).
DEDUP_WINDOW = timedelta(hours=23)
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 3600
# A refusal (4xx) will not go away by itself: retried rarely, until it is fixed or the row expires.
REFUSED_BACKOFF = timedelta(hours=6)
# Stripe's refusal of an identifier it already holds: "An event already exists with identifier <id>."
_DUPLICATE = re.compile(r"already exists with identifier", re.IGNORECASE)
# Starts `last_error` while an attempt of the row may have reached Stripe without our knowing its outcome:
# written before each request and kept until the row is sent, so a crash mid-request is covered too.
UNKNOWN = "[outcome unknown] "


def meter_events_queue(now: datetime | None = None) -> int:
    """Queue a MeterEvent for every tenant (with a Stripe customer) and closed day in Stripe's window whose
    rollups differ from what its rows hold; returns how many rows it created. Idempotent."""
    now = now or timezone.now()
    days = _queue_days(now)
    if not days:
        return 0
    created = 0
    for customer_pk in (
        StripeCustomer.objects.filter(deleted_at__isnull=True)
        .order_by("tenant_id")
        .values_list("pk", flat=True)
    ):
        created += _queue_tenant(customer_pk, days)
    return created


def meter_events_send(
    client: stripe.StripeClient | None = None, now: datetime | None = None, limit: int = 500
) -> int:
    """Send up to `limit` due PENDING rows, oldest first; returns how many Stripe now holds (SENT)."""
    now = now or timezone.now()
    due = (
        MeterEvent.objects.filter(status=MeterEvent.Status.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("timestamp", "sequence", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for pk in list(due):
        claim = _attempt_claim(pk, now)
        if claim is None:
            continue
        client = client or stripe_api.stripe_client()
        sent += _attempt(client, *claim, now)
    return sent


def meter_value(amount: Decimal, unit: Decimal) -> int:
    """`amount` of currency in meter units, rounded half-up."""
    return int((amount / unit).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def day_timestamp(day: date) -> int:
    """The epoch seconds every event of `day` carries: its noon UTC, well inside the day."""
    return int(datetime.combine(day, time(12), tzinfo=UTC).timestamp())


def _queue_days(now: datetime) -> list[date]:
    """Closed days (ended GATEHOUSE_METER_SETTLE_HOURS ago) whose timestamp Stripe still accepts."""
    now = now.astimezone(UTC)
    settle = timedelta(hours=float(settings.GATEHOUSE_METER_SETTLE_HOURS))
    oldest = now - BACKDATE_LIMIT
    last = (now - settle).date() - timedelta(days=1)
    day = (oldest - timedelta(days=1)).date()
    days = []
    while day <= last:
        if day_timestamp(day) >= oldest.timestamp():
            days.append(day)
        day += timedelta(days=1)
    return days


def _queue_tenant(customer_pk: int, days: list[date]) -> int:
    """One tenant's rows, under a lock on its StripeCustomer so that concurrent queuers take turns."""
    unit = Decimal(settings.GATEHOUSE_METER_UNIT)
    with transaction.atomic():
        customer = StripeCustomer.objects.select_for_update().filter(pk=customer_pk).first()
        if customer is None or customer.deleted_at is not None:
            return 0
        tenant_id = customer.tenant_id
        amounts = _day_amounts(tenant_id, days)
        # Every row counts as reported, whatever its status: PENDING and UNCERTAIN may reach (or have
        # reached) Stripe, and EXPIRED is the operator's to bill by hand; re-queuing any would bill it twice.
        reported = {
            row["day"]: (row["value"], row["sequence"])
            for row in MeterEvent.objects.filter(tenant_id=tenant_id, day__in=days)
            .values("day")
            .annotate(value=Sum("value"), sequence=Max("sequence"))
            .order_by()
        }
        rows = []
        for day in days:
            value, last_sequence = reported.get(day, (0, -1))
            difference = meter_value(amounts.get(day, ZERO), unit) - value
            if difference < 0:
                logger.warning(
                    "meter events: tenant %s %s: usage is %d units below what was reported; not sent "
                    "(no negative events); credit it by hand if it stays so (docs/BILLING-METERS.md)",
                    tenant_id,
                    day,
                    -difference,
                )
            if difference <= 0:
                continue
            sequence = last_sequence + 1
            rows.append(
                MeterEvent(
                    identifier=f"gh-{tenant_id}-{day:%Y%m%d}-{sequence}",
                    tenant_id=tenant_id,
                    day=day,
                    sequence=sequence,
                    event_name=settings.GATEHOUSE_METER_EVENT_NAME,
                    stripe_customer_id=customer.customer_id,
                    value=difference,
                    timestamp=day_timestamp(day),
                )
            )
        MeterEvent.objects.bulk_create(rows)
    return len(rows)


def _day_amounts(tenant_id: int, days: list[date]) -> dict[date, Decimal]:
    """The exact billed usage amount of each day, from its rollups (as billing.rating rates them)."""
    amounts: dict[date, Decimal] = defaultdict(Decimal)
    rollups = UsageRollup.objects.filter(tenant_id=tenant_id, day__in=days).values(
        "day",
        "requests",
        "input_tokens",
        "output_tokens",
        "unit_input_price",
        "unit_output_price",
        "unit_request_price",
        "price",
    )
    for row in rollups.iterator(chunk_size=2000):
        amounts[row["day"]] += usage_exact(
            requests=row["requests"],
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            unit_in=row["unit_input_price"],
            unit_out=row["unit_output_price"],
            unit_request=row["unit_request_price"],
            price=row["price"],
        )
    return amounts


def _attempt_claim(pk: int, now: datetime) -> tuple[MeterEvent, bool] | None:
    """Lock a due row and settle it without Stripe (UNCERTAIN, EXPIRED), or record the attempt about to be
    made and return the row, with whether an earlier attempt's outcome is unknown. The record is committed
    before the request: its `next_attempt_at` keeps other senders off the row meanwhile, and a crash
    mid-request leaves the row marked unknown."""
    with transaction.atomic():
        row = (
            MeterEvent.objects.select_for_update(skip_locked=True)
            .filter(pk=pk, status=MeterEvent.Status.PENDING)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .first()
        )
        if row is None:
            return None
        earlier_unknown = row.last_error.startswith(UNKNOWN)
        first = row.first_attempt_at
        if earlier_unknown and first is not None and now - first > DEDUP_WINDOW:
            row.status = MeterEvent.Status.UNCERTAIN
            row.save(update_fields=["status"])
            logger.error(
                "meter event %s: an attempt may have reached Stripe and the dedup window has passed: not "
                "resent (UNCERTAIN); check the meter's event summaries (docs/BILLING-METERS.md)",
                row.identifier,
            )
            return None
        if row.timestamp < (now - BACKDATE_LIMIT).timestamp():
            row.status = MeterEvent.Status.EXPIRED
            row.save(update_fields=["status"])
            logger.error(
                "meter event %s (%s units) is older than Stripe accepts: EXPIRED, bill it by hand "
                "(docs/BILLING-METERS.md)",
                row.identifier,
                row.value,
            )
            return None
        row.attempts += 1
        row.first_attempt_at = first or now
        row.next_attempt_at = now + _backoff(row.attempts)
        if not earlier_unknown:
            row.last_error = f"{UNKNOWN}attempt {row.attempts} in progress since {now:%Y-%m-%d %H:%M:%S}"
        row.save(update_fields=["attempts", "first_attempt_at", "next_attempt_at", "last_error"])
        return row, earlier_unknown


def _attempt(client: stripe.StripeClient, row: MeterEvent, earlier_unknown: bool, now: datetime) -> int:
    """Send the claimed row and record the outcome; returns 1 if Stripe now holds it."""
    try:
        stripe_api.meter_event_create(
            client,
            event_name=row.event_name,
            identifier=row.identifier,
            customer_id=row.stripe_customer_id,
            value=row.value,
            timestamp=row.timestamp,
            attempt=row.attempts,
        )
    except stripe_api.StripeUnavailableError as error:
        # A network error or a 5xx can hide a success: the outcome stays unknown (retried with backoff).
        row.last_error = f"{UNKNOWN}{error}"[:500]
        row.save(update_fields=["last_error"])
        logger.warning("meter event %s: Stripe unavailable, retrying later: %s", row.identifier, error)
        return 0
    except stripe_api.StripeRefusedError as error:
        if _DUPLICATE.search(str(error)):
            logger.info("meter event %s: Stripe already holds it (duplicate identifier)", row.identifier)
            return _sent(row, now)
        # Refused: this attempt did not land, but an earlier one whose outcome is unknown still may have.
        row.last_error = f"{UNKNOWN if earlier_unknown else ''}{error}"[:500]
        row.next_attempt_at = now + REFUSED_BACKOFF
        row.save(update_fields=["last_error", "next_attempt_at"])
        logger.error(
            "meter event %s refused by Stripe, retried in %s: %s", row.identifier, REFUSED_BACKOFF, error
        )
        return 0
    return _sent(row, now)


def _sent(row: MeterEvent, now: datetime) -> int:
    row.status = MeterEvent.Status.SENT
    row.sent_at = now
    row.next_attempt_at = None
    row.last_error = ""
    row.save(update_fields=["status", "sent_at", "next_attempt_at", "last_error"])
    return 1


def _backoff(attempts: int) -> timedelta:
    """60 s after the first failed attempt, doubling, at most an hour."""
    return timedelta(seconds=min(RETRY_BASE_SECONDS * 2 ** (attempts - 1), RETRY_MAX_SECONDS))
