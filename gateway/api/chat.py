"""POST /v1/chat/completions: JSON or Server-Sent Events, with OpenAI's chunk format."""

from __future__ import annotations

import asyncio
import time

import orjson

from gateway import inference
from gateway.api.errors import ApiError
from gateway.api.usage import UsageBuilder
from gateway.api.validation import chat_request_parse
from gateway.consumers import GatewayConsumer
from gateway.providers.base import JSON, ProviderError, StreamChunk, Usage
from gateway.routing import ALIASES, Route, model_allowed, route
from gateway.state import Principal, hot_state
from gateway.tokens import estimate_prompt_tokens

SSE_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
DONE = b"data: [DONE]\n\n"


class ChatCompletionsConsumer(GatewayConsumer):
    methods = ("POST",)

    async def respond(self, raw: bytes) -> None:
        principal = await self.authenticate()
        meter = UsageBuilder(self, principal)
        try:
            body = chat_request_parse(raw)
            meter.requested_model = body["model"]
            meter.stream = bool(body.get("stream"))
            run = await self._route(body, principal, meter)
        except ApiError as error:
            meter.requested_model = meter.requested_model or _model_of(raw)
            await meter.emit(http_status=error.status, error_class=error.code or "invalid_request")
            raise
        try:
            if meter.stream:
                await self._stream(body, run, meter)
            else:
                await self._complete(body, run, meter)
        except asyncio.CancelledError:
            # The client left before anything was delivered (a stream that started meters itself): record
            # the request, with no tokens, since the upstream call was cancelled with it.
            await asyncio.shield(
                meter.emit(
                    http_status=499, error_class="client_disconnected", run=run, client_disconnected=True
                )
            )
            raise

    async def _route(self, body: JSON, principal: Principal, meter: UsageBuilder) -> inference.Run:
        requested = body["model"]
        if not model_allowed(requested, principal.allowed_models):
            raise ApiError(
                403,
                f"This API key may not use the model `{requested}`.",
                param="model",
                code="model_not_allowed",
            )
        catalogue = {name: m for name, m in (await hot_state().models()).items() if principal.can_call(m)}
        estimate_model = requested if requested not in ALIASES else "gpt-4o"
        meter.prompt_estimate = estimate_prompt_tokens(body, estimate_model)
        chosen: Route = route(
            body,
            catalogue=catalogue,
            chains=dict(principal.chains),
            prompt_tokens=meter.prompt_estimate,
            task_header=self.header(b"x-gatehouse-task-type"),
        )
        meter.task_type = chosen.task_type
        return inference.Run(route=chosen, credentials=principal.credentials)

    async def _complete(self, body: JSON, run: inference.Run, meter: UsageBuilder) -> None:
        try:
            model, completion = await inference.complete(body, run)
        except ApiError as error:
            await meter.emit(http_status=error.status, error_class=error.code or "", run=run)
            raise
        meter.served(model)
        usage = completion.usage or meter.estimate_usage(_answer_text(completion.body))
        await meter.emit(http_status=200, run=run, usage=usage)
        await self.start(200, self._headers(model.name, b"application/json"))
        await self.finish(orjson.dumps(completion.body))

    async def _stream(self, body: JSON, run: inference.Run, meter: UsageBuilder) -> None:
        options = body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage"))
        try:
            model, first, chunks = await inference.open_stream(body, run)
        except ApiError as error:
            await meter.emit(http_status=error.status, error_class=error.code or "", run=run)
            raise
        meter.served(model)
        meter.ttft_ms = int((time.perf_counter() - self.started) * 1000)
        await self.start(200, self._headers(model.name, b"text/event-stream") + SSE_HEADERS)
        delivered: list[str] = []
        usage: Usage | None = None
        chunk: StreamChunk | None = first
        try:
            while chunk is not None:
                usage = chunk.usage or usage
                if not chunk.usage_only or include_usage:
                    delivered.append(chunk.text)
                    await self.send_body(b"data: " + chunk.data + b"\n\n", more_body=True)
                chunk = await anext(chunks, None)
        except ProviderError as error:
            await inference.stream_failed(run, model, error)
            final = usage or meter.estimate_usage("".join(delivered))
            await meter.emit(http_status=200, error_class=f"stream_{error.kind}", run=run, usage=final)
            await self.send_error(
                ApiError(502, f"The upstream stream failed: {error.message}", code="upstream_stream_error")
            )
            return
        except asyncio.CancelledError:  # the client went away: stop upstream, meter what was delivered
            close = getattr(chunks, "aclose", None)  # providers' streams are async generators
            if close is not None:
                await close()
            final = usage or meter.estimate_usage("".join(delivered))
            await asyncio.shield(
                meter.emit(
                    http_status=499,
                    error_class="client_disconnected",
                    run=run,
                    usage=final,
                    client_disconnected=True,
                )
            )
            raise
        await inference.stream_succeeded(model)
        await meter.emit(http_status=200, run=run, usage=usage or meter.estimate_usage("".join(delivered)))
        await self.finish(DONE)

    def _headers(self, model: str, content_type: bytes) -> list[tuple[bytes, bytes]]:
        return [
            *self.base_headers(content_type),
            (b"x-gatehouse-model", model.encode()),
            (b"x-gatehouse-cache", b"miss"),
        ]


def _model_of(raw: bytes) -> str:
    """The model a rejected body asked for, if it can be read at all (for the usage record)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return ""
    model = body.get("model") if isinstance(body, dict) else None
    return model[:200] if isinstance(model, str) else ""


def _answer_text(body: JSON) -> str:
    texts = []
    for choice in body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            texts.append(message["content"])
    return "".join(texts)
