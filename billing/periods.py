"""Billing periods: calendar months in UTC, named YYYY-MM."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django_tenants.utils import get_public_schema_name

from tenants.models import Tenant

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a period in UTC. Raises ValidationError unless `period` is YYYY-MM."""
    match = _PERIOD.match(period or "")
    if match is None:
        raise ValidationError(f"A period is YYYY-MM, not {period!r}.", code="bad_period")
    year, month = int(match[1]), int(match[2])
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def period_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def period_previous(moment: datetime) -> str:
    """The period before the one `moment` falls in (what the end-of-month run invoices)."""
    first = moment.astimezone(UTC).replace(day=1)
    return period_of(first - timedelta(days=1))


def period_days(period: str) -> list[date]:
    start, end = period_bounds(period)
    return [(start + timedelta(days=offset)).date() for offset in range((end - start).days)]


def period_is_closed(period: str, now: datetime) -> bool:
    return period_bounds(period)[1] <= now


def period_tenants(period: str) -> QuerySet[Tenant]:
    """The tenants a period bills: every one that existed before it ended."""
    _, end = period_bounds(period)
    return Tenant.objects.exclude(schema_name=get_public_schema_name()).filter(created_at__lt=end)
