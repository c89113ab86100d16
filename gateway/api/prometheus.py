"""GET /metrics: Prometheus exposition (bearer-protected when GATEHOUSE_METRICS_TOKEN is set)."""

from __future__ import annotations

import hmac

from django.conf import settings

from gateway.api.errors import ApiError
from gateway.circuit import circuit_snapshot
from gateway.consumers import GatewayConsumer
from gateway.metrics import circuit_record, metrics_exposition
from gateway.state import hot_state


class MetricsConsumer(GatewayConsumer):
    methods = ("GET",)

    async def respond(self, raw: bytes) -> None:
        token: str = settings.GATEHOUSE_METRICS_TOKEN
        if token:
            given = (self.header(b"authorization") or "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise ApiError(401, "A valid metrics token is required.", code="invalid_metrics_token")
        models = list(await hot_state().models())
        circuit_record({name: state.state for name, state in (await circuit_snapshot(models)).items()})
        body, content_type = metrics_exposition()
        await self.start(200, self.base_headers(content_type.encode()))
        await self.finish(body)
