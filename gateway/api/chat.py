"""POST /v1/chat/completions: JSON or Server-Sent Events, with OpenAI's chunk format."""

from __future__ import annotations

import asyncio
import time

import orjson
from django.conf import settings

from gateway import inference
from gateway.api.errors import ApiError
from gateway.api.usage import UsageBuilder
from gateway.api.validation import chat_request_parse
from gateway.cache.keys import cache_key
from gateway.cache.replay import replay_body, replay_chunks
from gateway.cache.service import (
    Answer,
    Hit,
    Lookup,
    cache_hit_later,
    cache_lookup_or_skip,
    cache_store_later,
)
from gateway.consumers import GatewayConsumer
from gateway.context import fit_by_dropping_turns
from gateway.limits.deny import deny_check
from gateway.limits.estimate import request_estimate
from gateway.limits.service import limits_admit, scope_tags
from gateway.metering.delivered import Delivered
from gateway.metering.liveness import open_key
from gateway.metrics import REFUSED_LOCALLY
from gateway.pii.answers import AnswerScanner
from gateway.pii.apply import StreamRestorer, completion_restore, pii_apply
from gateway.pii.redact import Redactor
from gateway.providers.base import JSON, ProviderError, StreamChunk, Usage
from gateway.routing import ALIASES, Route, model_allowed, route
from gateway.state import Principal, hot_state
from gateway.tokens import estimate_prompt_tokens

SSE_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
DONE = b"data: [DONE]\n\n"


class ChatCompletionsConsumer(GatewayConsumer):
    methods = ("POST",)
    restorer: Redactor | None = None  # set per request when placeholders must be restored in the answer
    scanner: AnswerScanner | None = None  # set per request when the tenant has answers scanned for PII
    dropped_messages = 0  # set when the tenant's overflow policy shortened the conversation

    def _answer(self, body: JSON) -> JSON:
        """The answer as the tenant gets it: scanned for PII (option), then its placeholders restored."""
        if self.scanner is not None:
            body = self.scanner.completion(body)
        return body if self.restorer is None else completion_restore(body, self.restorer)

    def _chunk(self, chunk: JSON, restoring: StreamRestorer | None) -> JSON:
        if self.scanner is not None:
            chunk = self.scanner.chunk(chunk)
        return chunk if restoring is None else restoring.chunk(chunk)

    def _filtered(self, chunk_data: bytes, restoring: StreamRestorer | None) -> bytes:
        if self.scanner is None and restoring is None:
            return chunk_data
        return orjson.dumps(self._chunk(orjson.loads(chunk_data), restoring))

    def _answer_counts(self, meter: UsageBuilder) -> None:
        if self.scanner is not None:
            for category, count in self.scanner.counts.items():
                meter.pii_counts[f"answer_{category}"] = count

    async def respond(self, raw: bytes) -> None:
        principal = await self.authenticate()
        refused = deny_check(scope_tags(principal.tenant_id, principal.key_prefix, principal.limits))
        if refused is not None:  # out of requests per minute, known in-process: nothing else to do
            REFUSED_LOCALLY.inc()
            refused.tally = (principal.schema, principal.tenant_id, principal.key_prefix)
            raise refused
        meter = UsageBuilder(self, principal)
        try:
            body = chat_request_parse(raw)
            meter.requested_model = body["model"]
            meter.stream = bool(body.get("stream"))
            # Before anything else sees the text: routing, the cache, the provider, logs.
            redactor = pii_apply(body, principal.pii)
            if redactor is not None:
                meter.pii_counts = dict(redactor.counts)
                if principal.pii.restore and redactor.originals:
                    self.restorer = redactor
            if principal.pii.scan_answers and principal.pii.answer_categories:
                self.scanner = AnswerScanner(principal.pii.answer_categories)
            run = await self._route(body, principal, meter)
            await self._admit(body, run, principal, meter)
        except ApiError as error:
            meter.requested_model = meter.requested_model or _model_of(raw)
            await meter.emit(http_status=error.status, error_class=error.code or "invalid_request")
            raise
        try:
            lookup = await self._cache_lookup(body, run, principal)
            if lookup is not None and lookup.hit is not None:
                await self._answer_from_cache(body, lookup.hit, meter)
            elif meter.stream:
                await self._stream(body, run, meter, lookup)
            else:
                await self._complete(body, run, meter, lookup)
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
        task_header = self.header(b"x-gatehouse-task-type")

        def attempt(candidate: JSON) -> tuple[int, Route]:
            tokens = estimate_prompt_tokens(candidate, estimate_model)
            return tokens, route(
                candidate,
                catalogue=catalogue,
                chains=dict(principal.chains),
                prompt_tokens=tokens,
                task_header=task_header,
            )

        try:
            meter.prompt_estimate, chosen = attempt(body)
        except ApiError as error:
            if error.code != "context_length_exceeded" or principal.limits.context_overflow != "truncate":
                raise
            (meter.prompt_estimate, chosen), shorter, self.dropped_messages = fit_by_dropping_turns(
                body, attempt, error
            )
            body["messages"] = shorter["messages"]
        meter.task_type = chosen.task_type
        return inference.Run(route=chosen, credentials=principal.credentials)

    async def _admit(self, body: JSON, run: inference.Run, principal: Principal, meter: UsageBuilder) -> None:
        """Let the request in against its tenant's and key's limits (one Redis round trip) or raise 429."""
        estimate = request_estimate(
            body,
            run.route.candidates,
            prompt_tokens=meter.prompt_estimate,
            pricing=principal.pricing,
            own_key_endpoints=principal.credentials,
        )
        self.admission = await limits_admit(
            tenant_id=principal.tenant_id,
            schema=principal.schema,
            key_prefix=principal.key_prefix,
            limits=principal.limits,
            request_id=self.request_id,
            tokens=estimate.tpm_tokens,
            worst_price=estimate.worst_price,
            worst_tokens=estimate.worst_tokens,
            open_key=open_key(),
            open_event=meter.opened(),
        )
        if self.admission is not None:
            self.limit_headers = self.admission.headers

    async def _cache_lookup(self, body: JSON, run: inference.Run, principal: Principal) -> Lookup | None:
        """The cache's answer to this request, if it has one; None when the cache does not apply."""
        policy = principal.cache
        if not policy.enabled:
            return None
        key = cache_key(
            body,
            scope_model=_scope_model(body["model"], run.route),
            max_temperature=policy.max_temperature,
            cache_control=self.header(b"cache-control"),
        )
        if key is None:
            return None
        return await cache_lookup_or_skip(principal.schema, policy, key, settings.GATEHOUSE_CACHE_CANDIDATES)

    async def _answer_from_cache(self, body: JSON, hit: Hit, meter: UsageBuilder) -> None:
        entry = hit.entry
        meter.cached(hit, (await hot_state().models()).get(entry.served_model))
        usage = Usage(entry.input_tokens, entry.output_tokens, False)
        if not meter.stream:
            answer = self._answer(replay_body(entry.body))
            self._answer_counts(meter)
            await meter.emit(http_status=200, usage=usage)
            await self.start(200, self._headers(entry.served_model, b"application/json", hit))
            await self.finish(orjson.dumps(answer))
        else:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = replay_chunks(entry.body, entry.chunks, include_usage=include_usage)
            await self.start(200, self._headers(entry.served_model, b"text/event-stream", hit) + SSE_HEADERS)
            meter.ttft_ms = int((time.perf_counter() - self.started) * 1000)
            restoring = StreamRestorer(self.restorer) if self.restorer is not None else None
            chunks = [self._chunk(chunk, restoring) if chunk["choices"] else chunk for chunk in chunks]
            await self.send_body(
                b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks), more_body=True
            )
            self._answer_counts(meter)
            await meter.emit(http_status=200, usage=usage)
            await self.finish(DONE)
        cache_hit_later(meter.principal.schema, hit)

    def _cache_store(
        self,
        meter: UsageBuilder,
        lookup: Lookup | None,
        model: str,
        usage: Usage,
        *,
        body: JSON | None,
        chunks_raw: list[bytes] | None,
    ) -> None:
        if lookup is None:
            return
        cache_store_later(
            meter.principal.schema,
            meter.principal.cache,
            lookup,
            Answer(
                requested_model=meter.requested_model,
                served_model=model,
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                body=body,
                chunks_raw=chunks_raw,
            ),
        )

    async def _complete(
        self, body: JSON, run: inference.Run, meter: UsageBuilder, lookup: Lookup | None
    ) -> None:
        try:
            model, completion = await inference.complete(body, run)
        except ApiError as error:
            await meter.emit(http_status=error.status, error_class=error.code or "", run=run)
            raise
        meter.served(model)
        usage = completion.usage or meter.estimate_usage(_answer_text(completion.body))
        answer = self._answer(completion.body)
        self._answer_counts(meter)
        await meter.emit(http_status=200, run=run, usage=usage)
        await self.start(200, self._headers(model.name, b"application/json"))
        await self.finish(orjson.dumps(answer))
        if _complete_answer(completion.body):
            self._cache_store(meter, lookup, model.name, usage, body=completion.body, chunks_raw=None)

    async def _stream(
        self, body: JSON, run: inference.Run, meter: UsageBuilder, lookup: Lookup | None
    ) -> None:
        options = body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage"))
        try:
            model, first, chunks = await inference.open_stream(body, run)
        except ApiError as error:
            await meter.emit(http_status=error.status, error_class=error.code or "", run=run)
            raise
        meter.served(model)
        meter.ttft_ms = int((time.perf_counter() - self.started) * 1000)
        # Durable before the first byte: if this process dies mid-stream, the reaper bills from here on.
        delivered = Delivered(model.name, meter.prompt_estimate)
        await meter.checkpoint(run, delivered.usage(None))
        await self.start(200, self._headers(model.name, b"text/event-stream") + SSE_HEADERS)
        kept: list[bytes] | None = [] if lookup is not None else None  # the chunks, for the cache
        restoring = StreamRestorer(self.restorer) if self.restorer is not None else None
        finished = False
        usage: Usage | None = None
        chunk: StreamChunk | None = first
        try:
            while chunk is not None:
                usage = chunk.usage or usage
                finished = finished or chunk.finish_reason not in (None, "content_filter")
                if kept is not None and not chunk.usage_only:
                    kept.append(chunk.data)
                if not chunk.usage_only or include_usage:
                    delivered.add(chunk.text)
                    data = chunk.data if chunk.usage_only else self._filtered(chunk.data, restoring)
                    await self.send_body(b"data: " + data + b"\n\n", more_body=True)
                    if time.monotonic() >= meter.checkpoint_due:
                        meter.checkpoint_later(run, delivered.usage(usage))
                chunk = await anext(chunks, None)
        except ProviderError as error:
            await inference.stream_failed(run, model, error)
            final = usage or meter.estimate_usage(delivered.text())
            await meter.emit(http_status=200, error_class=f"stream_{error.kind}", run=run, usage=final)
            await self.send_error(
                ApiError(502, f"The upstream stream failed: {error.message}", code="upstream_stream_error")
            )
            return
        except asyncio.CancelledError:  # the client went away: stop upstream, meter what was delivered
            close = getattr(chunks, "aclose", None)  # providers' streams are async generators
            if close is not None:
                await close()
            final = usage or meter.estimate_usage(delivered.text())
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
        usage = usage or meter.estimate_usage(delivered.text())
        self._answer_counts(meter)
        await meter.emit(http_status=200, run=run, usage=usage)
        await self.finish(DONE)
        if finished:
            self._cache_store(meter, lookup, model.name, usage, body=None, chunks_raw=kept)

    def _headers(self, model: str, content_type: bytes, hit: Hit | None = None) -> list[tuple[bytes, bytes]]:
        headers = [
            *self.base_headers(content_type),
            (b"x-gatehouse-model", model.encode()),
            (b"x-gatehouse-cache", hit.status.encode() if hit else b"miss"),
        ]
        if hit is not None:
            headers.append((b"x-gatehouse-similarity", f"{hit.similarity:.4f}".encode()))
        if self.dropped_messages:
            headers.append((b"x-gatehouse-truncated", str(self.dropped_messages).encode()))
        return headers


def _scope_model(requested: str, chosen: Route) -> str:
    """What an answer is scoped to: the model named, or for an alias the task type and its chain."""
    if requested not in ALIASES:
        return requested
    return f"{requested}|{chosen.task_type}|{','.join(m.name for m in chosen.candidates)}"


def _complete_answer(body: JSON) -> bool:
    """Worth caching: every choice finished normally (not cut, not filtered)."""
    choices = body.get("choices") or ()
    return bool(choices) and all(
        isinstance(c, dict) and c.get("finish_reason") not in (None, "content_filter") for c in choices
    )


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
