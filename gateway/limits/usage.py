"""A scope's month-to-date usage, read from the ledger (the tenant's RequestRecords). Reads only."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import close_old_connections, connection
from django.db.models import F, Sum
from django_tenants.utils import schema_context


def month_usage(schema: str, key_prefix: str, start: datetime, end: datetime) -> tuple[Decimal, int]:
    """Price charged and tokens used in [start, end), for the tenant or (with `key_prefix`) one key."""
    from gateway.models import RequestRecord

    with schema_context(schema):
        records = RequestRecord.objects.filter(created_at__gte=start, created_at__lt=end)
        if key_prefix:
            records = records.filter(api_key_prefix=key_prefix)
        totals = records.aggregate(spent=Sum("price"), tokens=Sum(F("input_tokens") + F("output_tokens")))
    return totals["spent"] or Decimal(0), int(totals["tokens"] or 0)


def month_usage_in_thread(
    schema: str, key_prefix: str, start: datetime, end: datetime
) -> tuple[Decimal, int]:
    """`month_usage` for the gateway's worker thread: rare (a new month, lost counters), so it holds no idle
    connection afterwards."""
    close_old_connections()
    try:
        return month_usage(schema, key_prefix, start, end)
    finally:
        connection.close()
