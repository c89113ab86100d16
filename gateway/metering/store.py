"""Storing usage events as RequestRecords in their tenants' schemas, idempotent on request_id."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from gateway.metering.events import UsageEvent
from gateway.models import ApiKey, RequestRecord
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def usage_store(events: Sequence[UsageEvent]) -> int:
    """Insert one RequestRecord per event into its tenant's schema; returns how many rows were new.

    Guarantees:
    - Idempotent on request_id: an event stored before (a retry, a re-delivered batch, a spooled copy of an
      event that also reached the stream) is skipped by the unique constraint (`ON CONFLICT DO NOTHING`),
      so each request is recorded, and billed, once, also with several consumers storing the same event.
      One exception: a request's own event replaces a record `recovered` from its last checkpoint.
    - One transaction per schema: when this returns, every stored row is committed (unless the caller wraps
      it in its own transaction). If it raises (a database fault, a value the column rejects), the failing
      schema's rows are rolled back; other schemas' rows may be committed, harmlessly, being idempotent.
    - Events of tenants that no longer exist, whose schema now belongs to another tenant (a tenant deleted
      then re-created with the same slug), or that name the public schema are skipped and logged: they are
      never written into someone else's ledger.
    """
    by_schema: dict[str, list[UsageEvent]] = defaultdict(list)
    for event in events:
        by_schema[event.tenant_schema].append(event)
    live = live_tenant_ids(by_schema)
    new = 0
    for schema, group in by_schema.items():
        kept = [event for event in group if live.get(schema) == event.tenant_id]
        if len(kept) < len(group):
            logger.warning(
                "usage: skipped %d event(s) of schema %s: no such tenant (deleted?)",
                len(group) - len(kept),
                schema,
            )
        if kept:
            new += _store_schema(schema, kept)
    return new


def live_tenant_ids(schemas: Iterable[str]) -> dict[str, int]:
    """Schema -> tenant id of the tenants that exist (never the public schema)."""
    public = get_public_schema_name()
    wanted = [schema for schema in schemas if schema != public]
    return dict(Tenant.objects.filter(schema_name__in=wanted).values_list("schema_name", "pk"))


def _store_schema(schema: str, events: Sequence[UsageEvent]) -> int:
    # One timestamp marks this call's rows: counting them afterwards tells new rows from existing ones
    # (bulk_create with ignore_conflicts cannot say which rows it inserted).
    recorded_at = timezone.now()
    unique: dict[str, UsageEvent] = {}
    for event in events:
        kept = unique.get(event.request_id)
        if kept is None or (kept.recovered and not event.recovered):
            unique[event.request_id] = event
    rows = [usage_event_record(event, recorded_at=recorded_at) for event in unique.values()]
    with schema_context(schema), transaction.atomic():
        RequestRecord.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        _keys_touch(unique.values())
        new = RequestRecord.objects.filter(request_id__in=list(unique), recorded_at=recorded_at).count()
        if new < len(unique):
            _recovered_replace(unique, recorded_at)
        return new


def _recovered_replace(events: dict[str, UsageEvent], recorded_at: datetime) -> None:
    """A request's own event replaces the record the reaper made from its last checkpoint: the process was
    only thought dead (or its event was spooled while Redis was away), and its own figures are the real ones.
    Only called when some rows already existed: the common batch costs no extra query."""
    finals = [request_id for request_id, event in events.items() if not event.recovered]
    stale = list(
        RequestRecord.objects.filter(request_id__in=finals, recovered=True).values_list(
            "request_id", flat=True
        )
    )
    if not stale:
        return
    RequestRecord.objects.filter(request_id__in=stale, recovered=True).delete()
    RequestRecord.objects.bulk_create(
        [usage_event_record(events[request_id], recorded_at=recorded_at) for request_id in stale]
    )
    logger.info("usage: %d recovered record(s) replaced by their requests' own events", len(stale))


def _keys_touch(events: Iterable[UsageEvent]) -> None:
    """Move each key's `last_used_at` forward to its latest request: the hot path never writes it."""
    latest: dict[str, int] = {}
    for event in events:
        if event.api_key_prefix:
            latest[event.api_key_prefix] = max(latest.get(event.api_key_prefix, 0), event.created_ms)
    for prefix, created_ms in latest.items():
        used = datetime.fromtimestamp(created_ms / 1000, tz=UTC)
        ApiKey.objects.filter(prefix=prefix).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=used)
        ).update(last_used_at=used)


def usage_event_record(event: UsageEvent, *, recorded_at: datetime) -> RequestRecord:
    """The (unsaved) RequestRecord of an event: every field of the event, the tenant being the schema."""
    return RequestRecord(
        request_id=event.request_id,
        created_at=datetime.fromtimestamp(event.created_ms // 1000, tz=UTC)
        + timedelta(milliseconds=event.created_ms % 1000),
        recorded_at=recorded_at,
        api_key_prefix=event.api_key_prefix,
        requested_model=event.requested_model,
        served_model=event.served_model,
        provider=event.provider,
        task_type=event.task_type,
        attempts=[asdict(attempt) for attempt in event.attempts],
        fallback_count=event.fallback_count,
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        tokens_estimated=event.tokens_estimated,
        provider_cost=event.provider_cost,
        price=event.price,
        unit_input_price=event.unit_input_price,
        unit_output_price=event.unit_output_price,
        unit_request_price=event.unit_request_price,
        latency_ms=event.latency_ms,
        ttft_ms=event.ttft_ms,
        cache_status=event.cache_status,
        http_status=event.http_status,
        error_class=event.error_class,
        stream=event.stream,
        client_disconnected=event.client_disconnected,
        cache_similarity=event.cache_similarity,
        cache_saving=event.cache_saving,
        pii_counts=dict(event.pii_counts),
        client_request_id=event.client_request_id,
        recovered=event.recovered,
    )
