"""Reads for the tenant portal. They run in the tenant's schema (set by the host middleware)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from gateway.models import RequestRecord


@dataclass(frozen=True)
class UsageDay:
    day: date
    requests: int
    input_tokens: int
    output_tokens: int
    price: Decimal

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class UsageSummary:
    days: list[UsageDay]
    requests: int
    tokens: int
    price: Decimal
    max_day_tokens: int


def usage_summary(*, days: int = 30) -> UsageSummary:
    """Requests, tokens and charges per day over the last `days` days, every day present."""
    today = timezone.now().date()
    start = today - timedelta(days=days - 1)
    rows = (
        RequestRecord.objects.filter(created_at__date__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            requests=Count("id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            price=Sum("price"),
        )
    )
    by_day = {row["day"]: row for row in rows}
    series = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        row = by_day.get(day)
        series.append(
            UsageDay(
                day=day,
                requests=row["requests"] if row else 0,
                input_tokens=row["input_tokens"] or 0 if row else 0,
                output_tokens=row["output_tokens"] or 0 if row else 0,
                price=(row["price"] or Decimal(0)) if row else Decimal(0),
            )
        )
    return UsageSummary(
        days=series,
        requests=sum(d.requests for d in series),
        tokens=sum(d.tokens for d in series),
        price=sum((d.price for d in series), Decimal(0)).quantize(Decimal("0.01")),
        max_day_tokens=max((d.tokens for d in series), default=0),
    )
