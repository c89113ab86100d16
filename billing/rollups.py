"""Rollups: each tenant's ledger (its RequestRecords) summed per UTC day, model, provider, cache status and
unit prices (per 1M input and output tokens, per request), in the public schema (UsageRollup), for invoices
and dashboards.

Idempotent by construction: a (tenant, day) is always recomputed whole from the ledger and its rows replaced
in one transaction, under a per-tenant advisory lock, so re-running, running twice at once or crashing
half-way never double counts. The periodic task recomputes the days that received records since its last
pass (with an overlap for transactions still committing); the invoice run recomputes the whole period first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, Max, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, NullIf, TruncDate
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from billing.models import RollupCursor, UsageRollup
from billing.periods import period_bounds, period_days
from gateway.models import RequestRecord
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# Records become visible when their transaction commits, which can be a little after their `recorded_at`:
# each pass re-reads this much before its cursor.
OVERLAP = timedelta(minutes=5)
_LOCK_NAMESPACE = 0x6768  # "gh": advisory locks of rollups, per tenant


def rollup_days(tenant: Tenant, days: Iterable[date]) -> int:
    """Recompute `tenant`'s rollups of `days` from its ledger; returns how many rollup rows it wrote.

    One INSERT ... SELECT ... GROUP BY in PostgreSQL: the sums never pass through Python (half the time of a
    large tenant was building and bulk-inserting rows: BENCHMARKS.md, billing at scale)."""
    days = sorted(set(days))
    if not days:
        return 0
    start = datetime.combine(days[0], datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    quote = connection.ops.quote_name
    target = f"{quote(get_public_schema_name())}.{quote(UsageRollup._meta.db_table)}"
    source = f"{quote(tenant.schema_name)}.{quote(RequestRecord._meta.db_table)}"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, tenant.pk])
        UsageRollup.objects.filter(tenant=tenant, day__in=days).delete()
        # Identifiers are quoted names of our own tables and schema; every value is a parameter.
        cursor.execute(
            f"""
            INSERT INTO {target} (tenant_id, day, model, provider, cache_status, unit_input_price,
                unit_output_price, unit_request_price, requests, errors, input_tokens, output_tokens,
                provider_cost, price, computed_at)
            SELECT %s, (created_at AT TIME ZONE 'UTC')::date,
                COALESCE(NULLIF(served_model, ''), requested_model), provider, cache_status,
                unit_input_price, unit_output_price, unit_request_price, count(*),
                count(*) FILTER (WHERE http_status >= 400), sum(input_tokens), sum(output_tokens),
                sum(provider_cost), sum(price), %s
            FROM {source}
            WHERE created_at >= %s AND created_at < %s AND (created_at AT TIME ZONE 'UTC')::date = ANY(%s)
            GROUP BY 2, 3, 4, 5, 6, 7, 8
            """,  # noqa: S608
            [tenant.pk, timezone.now(), start, end, days],
        )
        written: int = cursor.rowcount
    return written


def rollup_period(tenant: Tenant, period: str) -> int:
    """Recompute every day of a period (what the invoice run does before rating)."""
    return rollup_days(tenant, period_days(period))


def rollup_pending(tenant: Tenant) -> int:
    """Recompute the days that received records since the last pass; returns the rows written."""
    cursor_row = RollupCursor.objects.filter(tenant=tenant).first()
    since = cursor_row.recorded_upto - OVERLAP if cursor_row else None
    with schema_context(tenant.schema_name):
        records = RequestRecord.objects.all()
        if since is not None:
            records = records.filter(recorded_at__gt=since)
        latest = records.aggregate(latest=Max("recorded_at"))["latest"]
        days = list(
            records.annotate(day=TruncDate("created_at", tzinfo=UTC)).values_list("day", flat=True).distinct()
        )
    if latest is None:
        return 0
    written = rollup_days(tenant, days)
    RollupCursor.objects.update_or_create(tenant=tenant, defaults={"recorded_upto": latest})
    return written


def rollup_all_pending() -> int:
    """The periodic pass over every tenant; one tenant's failure is logged and does not stop the others."""
    written = 0
    for tenant in Tenant.objects.exclude(schema_name="public").order_by("pk"):
        try:
            written += rollup_pending(tenant)
        except Exception:
            logger.exception("rollup of tenant %s failed; retried on the next pass", tenant.pk)
    return written


def ledger_records(tenant: Tenant, start: datetime, end: datetime) -> QuerySet[RequestRecord]:
    """The tenant's records created in [start, end); call inside its schema_context."""
    return RequestRecord.objects.filter(created_at__gte=start, created_at__lt=end)


def period_ledger_sums(tenant: Tenant, period: str) -> list[dict[str, Any]]:
    """The ledger's sums for a whole period per model, provider, cache status and unit prices (reconcile)."""
    start, end = period_bounds(period)
    with schema_context(tenant.schema_name):
        return list(
            ledger_records(tenant, start, end)
            .annotate(model=Coalesce(NullIf(F("served_model"), Value("")), F("requested_model")))
            .values(
                "model",
                "provider",
                "cache_status",
                "unit_input_price",
                "unit_output_price",
                "unit_request_price",
            )
            .annotate(
                requests=Count("pk"),
                input_tokens=Sum("input_tokens"),
                output_tokens=Sum("output_tokens"),
                provider_cost=Sum("provider_cost"),
                price=Sum("price"),
            )
            .order_by()
        )
