"""The gateway's access log: one structured line per request, from its usage event (no prompt, no key)."""

from __future__ import annotations

import structlog
from django.conf import settings

from gateway.metering.events import UsageEvent

_log = structlog.get_logger("gateway.access")


def access_log(event: UsageEvent) -> None:
    if not settings.GATEHOUSE_ACCESS_LOG:
        return
    _log.info(
        "request",
        request_id=event.request_id,
        tenant=event.tenant_schema,
        key=event.api_key_prefix,
        requested_model=event.requested_model,
        served_model=event.served_model,
        task_type=event.task_type,
        status=event.http_status,
        error=event.error_class,
        stream=event.stream,
        latency_ms=event.latency_ms,
        ttft_ms=event.ttft_ms,
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        estimated=event.tokens_estimated,
        attempts=len(event.attempts),
        fallbacks=event.fallback_count,
        disconnected=event.client_disconnected,
        cache=event.cache_status,
        similarity=event.cache_similarity,
    )


def access_log_unauthenticated(*, request_id: str, status: int, code: str, path: str) -> None:
    if settings.GATEHOUSE_ACCESS_LOG:
        _log.info("request", request_id=request_id, status=status, error=code, path=path)
