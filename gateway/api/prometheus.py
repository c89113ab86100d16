"""GET /metrics: Prometheus exposition (bearer-protected when GATEHOUSE_METRICS_TOKEN is set)."""

from __future__ import annotations

import asyncio
import hmac
import logging

from django.conf import settings
from redis.exceptions import RedisError

from config.redis import async_redis_client
from gateway.api.errors import ApiError
from gateway.circuit import circuit_snapshot
from gateway.consumers import GatewayConsumer
from gateway.metering.dead_letters import DEAD_STREAM, DEAD_TOTAL
from gateway.metering.emit import USAGE_STREAM
from gateway.metering.liveness import PROCESSES
from gateway.metrics import circuit_record, metrics_exposition, pipeline_record
from gateway.state import hot_state

log = logging.getLogger(__name__)


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
        await _pipeline_state()
        body, content_type = metrics_exposition()
        await self.start(200, self.base_headers(content_type.encode()))
        await self.finish(body)


async def _pipeline_state() -> None:
    """The usage pipeline's gauges, from Redis (left as they were if Redis does not answer quickly)."""
    try:
        async with asyncio.timeout(0.5):
            pipe = async_redis_client().pipeline(transaction=False)
            pipe.xlen(USAGE_STREAM)
            pipe.xlen(DEAD_STREAM)
            pipe.get(DEAD_TOTAL)
            pipe.scard(PROCESSES)
            backlog, dead, total, processes = await pipe.execute()
    except (RedisError, OSError, TimeoutError) as error:
        log.warning("metrics: usage pipeline state unavailable (%s)", type(error).__name__)
        return
    pipeline_record(
        backlog=int(backlog), dead=int(dead), dead_total=int(total or 0), processes=int(processes)
    )
