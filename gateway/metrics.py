"""Prometheus metrics of the gateway, recorded once per request from its usage event, and `/metrics`.

With several web processes on one host, set PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode)
so that a scrape sees all of them; the circuit gauge is read from Redis at scrape time, so it is shared.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import REGISTRY

from gateway.metering.events import UsageEvent

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

REQUESTS = Counter("gatehouse_requests_total", "Inference requests", ["model", "status", "stream", "cache"])
LATENCY = Histogram(
    "gatehouse_request_duration_seconds",
    "Time from request to last byte",
    ["stream"],
    buckets=LATENCY_BUCKETS,
)
TTFT = Histogram(
    "gatehouse_time_to_first_token_seconds", "Time to the first streamed chunk", buckets=LATENCY_BUCKETS
)
UPSTREAM_ERRORS = Counter("gatehouse_upstream_errors_total", "Failed upstream attempts", ["model", "kind"])
FALLBACKS = Counter(
    "gatehouse_fallbacks_total", "Requests served (or failed) after moving past a model", ["requested"]
)
TOKENS = Counter("gatehouse_tokens_total", "Tokens metered", ["model", "direction"])
COST = Counter("gatehouse_provider_cost_usd_total", "Provider cost (float, for dashboards only)", ["model"])
CACHE_SAVING = Counter(
    "gatehouse_cache_saving_usd_total", "Provider cost avoided by cache hits (float, dashboards)", ["model"]
)
REFUSED_LOCALLY = Counter(
    "gatehouse_requests_refused_locally_total",
    "Requests refused inside a web process (RPM memory, requests in flight): counted per key and minute "
    "in RefusalCount rows instead of one usage record each",
)
USAGE_BACKLOG = Gauge(
    "gatehouse_usage_stream_length", "Usage events waiting in the Redis stream", multiprocess_mode="max"
)
USAGE_DEAD = Gauge(
    "gatehouse_usage_dead_letters",
    "Usage entries in the dead-letter stream (could not be parsed at all; manage.py usage_dead_letters)",
    multiprocess_mode="max",
)
USAGE_DEAD_TOTAL = Gauge(
    "gatehouse_usage_dead_lettered",
    "Usage entries ever dead-lettered (a counter kept in Redis, so shared by every process)",
    multiprocess_mode="max",
)
OPEN_PROCESSES = Gauge(
    "gatehouse_serving_processes",
    "Processes registered as serving requests (dead ones leave once the reaper has settled them)",
    multiprocess_mode="max",
)
CIRCUIT = Gauge(
    "gatehouse_circuit_state", "0 closed, 1 half-open, 2 open", ["model"], multiprocess_mode="max"
)

_CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def metrics_record(event: UsageEvent) -> None:
    model = event.served_model or "none"
    REQUESTS.labels(model, str(event.http_status), str(event.stream).lower(), event.cache_status).inc()
    LATENCY.labels(str(event.stream).lower()).observe(event.latency_ms / 1000)
    if event.ttft_ms is not None:
        TTFT.observe(event.ttft_ms / 1000)
    for attempt in event.attempts:
        if attempt.error:
            UPSTREAM_ERRORS.labels(attempt.model, attempt.error).inc()
    if event.fallback_count:
        FALLBACKS.labels(event.requested_model).inc()
    if event.input_tokens or event.output_tokens:
        TOKENS.labels(model, "input").inc(event.input_tokens)
        TOKENS.labels(model, "output").inc(event.output_tokens)
        COST.labels(model).inc(float(event.provider_cost))
    if event.cache_saving:
        CACHE_SAVING.labels(model).inc(float(event.cache_saving))


def circuit_record(states: dict[str, str]) -> None:
    for model, state in states.items():
        CIRCUIT.labels(model).set(_CIRCUIT_VALUES.get(state, 0))


def pipeline_record(*, backlog: int, dead: int, dead_total: int, processes: int) -> None:
    """The usage pipeline's state, read from Redis at scrape time."""
    USAGE_BACKLOG.set(backlog)
    USAGE_DEAD.set(dead)
    USAGE_DEAD_TOTAL.set(dead_total)
    OPEN_PROCESSES.set(processes)


def metrics_exposition() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
