"""The inference service: run one chat-completions request through the route's models with retries,
backoff, circuit breakers and fallback, and account for every attempt. Consumers call these functions;
they never talk to providers themselves.

Retry policy per model: up to GATEHOUSE_MAX_ATTEMPTS_PER_MODEL attempts on retryable failures (429, 5xx,
timeouts, connection errors), waiting `Retry-After` when the upstream sent one (moving on at once when it
asks for longer than GATEHOUSE_RETRY_MAX_SECONDS), else exponential backoff with full jitter. Credential
or unknown-model errors move on to the next model without retrying; a 400 from the upstream goes back to the
client. Streams fall over only until their first chunk: after that, bytes have reached the client.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
from django.conf import settings

from gateway.api.errors import ApiError
from gateway.circuit import Breakers
from gateway.http import deployment_for, http_client, timeouts
from gateway.metering.events import Attempt
from gateway.providers import get_provider
from gateway.providers.base import JSON, Completion, Deployment, Provider, ProviderError, StreamChunk
from gateway.routing import ModelInfo, Route

_breakers: dict[int, Breakers] = {}
T = TypeVar("T")


def breakers() -> Breakers:
    key = id(asyncio.get_running_loop())
    found = _breakers.get(key)
    if found is None:
        found = _breakers[key] = Breakers()
    return found


@dataclass
class Run:
    """What happened to one request upstream: every attempt, and the last failure if it failed."""

    route: Route
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)  # the tenant's own keys
    attempts: list[Attempt] = field(default_factory=list)
    last_error: ProviderError | None = None
    circuits_blocked: int = 0


def _delay(attempt: int, error: ProviderError) -> float | None:
    """Seconds to wait before retrying the same model, or None to move on to the next one."""
    if not error.retryable or attempt >= settings.GATEHOUSE_MAX_ATTEMPTS_PER_MODEL:
        return None
    cap = settings.GATEHOUSE_RETRY_MAX_SECONDS
    if error.retry_after is not None:
        return error.retry_after if error.retry_after <= cap else None
    return random.uniform(0, min(cap, settings.GATEHOUSE_RETRY_BASE_SECONDS * 2 ** (attempt - 1)))  # noqa: S311


def _record(run: Run, model: ModelInfo, started: float, error: ProviderError | None) -> None:
    run.attempts.append(
        Attempt(
            model=model.name,
            provider=model.provider,
            status=error.status if error else 200,
            error=error.kind if error else "",
            latency_ms=int((time.perf_counter() - started) * 1000),
        )
    )
    if error is not None:
        run.last_error = error


def _give_up(run: Run) -> ApiError:
    """The error for a request that no model could serve."""
    error = run.last_error
    if error is None:
        return ApiError(
            503,
            "Every model that could serve this request is temporarily unavailable (circuit open). "
            f"Retry after {int(settings.GATEHOUSE_CIRCUIT_OPEN_SECONDS)} seconds.",
            code="upstream_unavailable",
            headers=((b"retry-after", str(int(settings.GATEHOUSE_CIRCUIT_OPEN_SECONDS)).encode()),),
        )
    tried = ", ".join(dict.fromkeys(a.model for a in run.attempts))
    if error.kind == "bad_request":
        return ApiError(
            400, f"The upstream model rejected the request: {error.message}", code="upstream_error"
        )
    if error.kind == "timeout":
        return ApiError(
            504, f"Upstream timed out after all fallbacks (tried {tried}).", code="upstream_timeout"
        )
    if error.kind in ("rate_limited", "overloaded"):
        retry = str(int(error.retry_after or 1)).encode()
        return ApiError(
            503,
            f"Every upstream is rate limiting or overloaded (tried {tried}).",
            code="upstream_unavailable",
            headers=((b"retry-after", retry),),
        )
    return ApiError(
        502, f"Upstream failed after all fallbacks (tried {tried}): {error.message}", code="upstream_error"
    )


async def _candidates(run: Run) -> AsyncIterator[ModelInfo]:
    """The route's models whose circuit lets a call through, in order."""
    board = breakers()
    states = await board.states([m.name for m in run.route.candidates])
    for model in run.route.candidates:
        if await board.allow(model.name, states[model.name]):
            yield model
        else:
            run.circuits_blocked += 1


async def _after(model: ModelInfo, error: ProviderError | None) -> None:
    board = breakers()
    if error is None:
        state = board.cache.get(model.name)
        if state is not None:
            await board.success(model.name, state[0])
    elif error.retryable or error.kind == "stream_cut":
        await board.failure(model.name)


Call = Callable[[Provider, Deployment, httpx.AsyncClient], Awaitable[T]]


async def _first_success(run: Run, call: Call[T]) -> tuple[ModelInfo, T]:
    """`call` against each allowed model of the route in turn, retrying per the module's policy, until one
    succeeds. Raises ApiError (from `_give_up`) when none does, or at once on an upstream 400."""
    async for model in _candidates(run):
        provider = get_provider(model.provider)
        deployment = deployment_for(model, run.credentials)
        client = http_client(model.endpoint)
        for attempt in range(1, settings.GATEHOUSE_MAX_ATTEMPTS_PER_MODEL + 1):
            started = time.perf_counter()
            try:
                result = await call(provider, deployment, client)
            except ProviderError as error:
                _record(run, model, started, error)
                await _after(model, error)
                if error.kind == "bad_request":
                    raise _give_up(run) from error
                delay = _delay(attempt, error)
                if delay is None:
                    break
                await asyncio.sleep(delay)
            else:
                _record(run, model, started, None)
                return model, result
    raise _give_up(run)


async def complete(body: JSON, run: Run) -> tuple[ModelInfo, Completion]:
    """A non-streaming answer from the first model that gives one. Raises ApiError when none does."""

    async def call(provider: Provider, deployment: Deployment, client: httpx.AsyncClient) -> Completion:
        return await provider.complete(body, deployment, client, timeouts())

    model, completion = await _first_success(run, call)
    await _after(model, None)
    return model, completion


async def open_stream(body: JSON, run: Run) -> tuple[ModelInfo, StreamChunk, AsyncIterator[StreamChunk]]:
    """The first chunk of a stream and the rest of it, from the first model that starts one.

    Raises ApiError when no model starts a stream; nothing has been sent to the client then.
    """

    async def call(
        provider: Provider, deployment: Deployment, client: httpx.AsyncClient
    ) -> tuple[StreamChunk, AsyncIterator[StreamChunk]]:
        chunks = aiter(provider.stream(body, deployment, client, timeouts()))
        try:
            return await anext(chunks), chunks
        except StopAsyncIteration:
            raise ProviderError("stream_cut", "upstream stream ended before its first chunk") from None

    model, (first, chunks) = await _first_success(run, call)
    return model, first, chunks


async def stream_failed(run: Run, model: ModelInfo, error: ProviderError) -> None:
    """Account for a stream that broke after its first chunk (the client got a partial answer)."""
    run.last_error = error
    if run.attempts:
        last = run.attempts[-1]
        run.attempts[-1] = Attempt(last.model, last.provider, last.status, error.kind, last.latency_ms)
    await _after(model, error)


async def stream_succeeded(model: ModelInfo) -> None:
    await _after(model, None)
