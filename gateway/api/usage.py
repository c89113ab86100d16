"""Building the one usage event of a request as it goes, and emitting it (gateway.metering).

Until it is emitted, the request's open record (written at admission, replaced by checkpoints) holds the
event as it would be if the process died at that moment: flagged `recovered`, with what had been delivered.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings

from gateway.limits.service import open_record
from gateway.metering.emit import usage_emit
from gateway.metering.events import UsageEvent
from gateway.metering.opened import checkpoint_write
from gateway.pricing import FREE, provider_cost
from gateway.providers.base import Usage
from gateway.routing import ModelInfo
from gateway.state import Principal
from gateway.tokens import count_text

if TYPE_CHECKING:
    from gateway.cache.service import Hit
    from gateway.consumers import GatewayConsumer
    from gateway.inference import Run

DIED = "process_died"  # the error class of a record the reaper settled from a checkpoint


class UsageBuilder:
    """Collects what the request did; `emit` sends exactly one event (later calls are ignored)."""

    def __init__(self, consumer: GatewayConsumer, principal: Principal) -> None:
        self.consumer = consumer
        self.principal = principal
        self.requested_model = ""
        self.stream = False
        self.task_type = ""
        self.prompt_estimate = 0
        self.model: ModelInfo | None = None
        self.ttft_ms: int | None = None
        self.emitted = False
        self.hit: Hit | None = None
        self.pii_counts: dict[str, int] = {}
        self.checkpoint_due = 0.0  # monotonic time of the next periodic checkpoint
        self._checkpoint: asyncio.Task[bool] | None = None

    def served(self, model: ModelInfo) -> None:
        self.model = model

    def cached(self, hit: Hit, model: ModelInfo | None) -> None:
        """Answered from the cache; `model` is the catalogue entry of the model that made the answer."""
        self.hit = hit
        self.model = model

    def estimate_usage(self, completion_text: str) -> Usage:
        """Offline counts, for when the provider reported none (flagged as estimated)."""
        name = self.model.name if self.model else "gpt-4o"
        return Usage(self.prompt_estimate, count_text(completion_text, name) if completion_text else 0, True)

    def event(
        self,
        *,
        http_status: int,
        error_class: str = "",
        run: Run | None = None,
        usage: Usage | None = None,
        client_disconnected: bool = False,
        recovered: bool = False,
    ) -> UsageEvent:
        """The request's usage event with what is known now, priced."""
        consumer = self.consumer
        cost, units = Decimal(0), FREE
        # With the tenant's own provider key the provider bills the tenant, not us: no cost, the BYOK fee.
        own_key = self.model is not None and self.model.endpoint in self.principal.credentials
        if self.model is not None:
            units = self.principal.pricing.request_unit_prices(self.model, own_key=own_key)
            if usage is not None and not own_key:
                cost = provider_cost(self.model, usage.prompt_tokens, usage.completion_tokens)
        hit, saving = self.hit, Decimal(0)
        if hit is not None:  # no provider was called: the cost is saved, the plan's hit price is charged
            cost, saving = Decimal(0), cost
            units = units.percent(self.principal.pricing.hit_percent)
        price = (
            units.amount(usage.prompt_tokens, usage.completion_tokens) if usage is not None else Decimal(0)
        )
        return UsageEvent(
            request_id=consumer.request_id,
            tenant_schema=self.principal.schema,
            tenant_id=self.principal.tenant_id,
            api_key_prefix=self.principal.key_prefix,
            created_ms=consumer.started_ms,
            requested_model=self.requested_model,
            served_model=hit.entry.served_model if hit else self.model.name if self.model else "",
            provider=self.model.provider if self.model else "",
            task_type=self.task_type,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            tokens_estimated=usage.estimated if usage else False,
            provider_cost=cost,
            price=price,
            unit_input_price=units.input,
            unit_output_price=units.output,
            unit_request_price=units.request if usage is not None else Decimal(0),  # nothing used, no fee
            latency_ms=int((time.perf_counter() - consumer.started) * 1000),
            ttft_ms=self.ttft_ms,
            cache_status=hit.status if hit else "miss",
            cache_similarity=hit.similarity if hit else None,
            cache_saving=saving,
            pii_counts=self.pii_counts,
            http_status=http_status,
            error_class=error_class,
            stream=self.stream,
            client_disconnected=client_disconnected,
            attempts=tuple(run.attempts) if run else (),
            client_request_id=consumer.client_request_id,
            recovered=recovered,
        )

    def opened(self) -> UsageEvent:
        """The open record's event at admission: nothing delivered yet, so nothing billed if the process
        dies before the answer starts (the client never got a byte)."""
        return self.event(http_status=500, error_class=DIED, recovered=True)

    async def checkpoint(self, run: Run, usage: Usage) -> None:
        """Record, and wait until Redis has it, that `usage` has been delivered (a stream's first byte)."""
        self.checkpoint_due = time.monotonic() + settings.GATEHOUSE_CHECKPOINT_SECONDS
        await self._checkpoint_write(run, usage)

    def checkpoint_later(self, run: Run, usage: Usage) -> None:
        """A periodic checkpoint of a long stream, not awaited; skipped while the last is in flight."""
        self.checkpoint_due = time.monotonic() + settings.GATEHOUSE_CHECKPOINT_SECONDS
        if self._checkpoint is not None and not self._checkpoint.done():
            return
        self._checkpoint = asyncio.ensure_future(self._checkpoint_write(run, usage))

    async def _checkpoint_write(self, run: Run, usage: Usage) -> bool:
        admission = self.consumer.admission
        if admission is None or self.emitted:
            return False
        event = self.event(http_status=200, error_class=DIED, run=run, usage=usage, recovered=True)
        record = open_record(admission, event)
        return await checkpoint_write(admission.open_key, admission.tenant_id, admission.request_id, record)

    async def emit(
        self,
        *,
        http_status: int,
        error_class: str = "",
        run: Run | None = None,
        usage: Usage | None = None,
        client_disconnected: bool = False,
    ) -> None:
        if self.emitted:
            return
        self.emitted = True
        event = self.event(
            http_status=http_status,
            error_class=error_class,
            run=run,
            usage=usage,
            client_disconnected=client_disconnected,
        )
        consumer = self.consumer
        consumer.usage_event = event  # logged and counted by the consumer after the response's last byte
        await usage_emit(event, consumer.settle_with(event))  # the limiter's settle rides along
