"""Reads for the tenant portal. They run in the tenant's schema (set by the host middleware)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from gateway.bounds import label_bounded
from gateway.models import RefusalCount, RequestRecord

REQUEST_PAGE = 50


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


def request_search(query: str = "", *, limit: int = REQUEST_PAGE) -> QuerySet[RequestRecord]:
    """The latest requests, or those whose id (the gateway's `x-request-id`) or the client's own request id
    (`x-client-request-id` / the `x-request-id` it sent) is `query`, newest first. `query` is bounded like
    the label it is compared with, so any text is a safe search."""
    records = RequestRecord.objects.order_by("-created_at")
    wanted = label_bounded(query.strip())
    if wanted:
        records = records.filter(Q(request_id=wanted) | Q(client_request_id=wanted))
    return records[:limit]


def refusals_total(*, days: int = 30) -> int:
    """Requests refused inside the gateway (counted per key and minute, not recorded one by one)."""
    since = timezone.now() - timedelta(days=days)
    total = RefusalCount.objects.filter(minute__gte=since).aggregate(total=Sum("count"))["total"]
    return int(total or 0)
