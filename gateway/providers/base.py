"""The provider contract: one small interface that every upstream (OpenAI, Anthropic, any OpenAI-compatible
server, the simulator) implements, plus the value types that cross it.

The gateway speaks OpenAI's wire format to clients. A provider takes an OpenAI chat-completions request body
(already validated) and a `Deployment` saying where to send it, and returns OpenAI-format results: a whole
`chat.completion` object, or a stream of `chat.completion.chunk` objects. Translation (e.g. to Anthropic's
Messages API) happens inside the provider; callers never see another wire format.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

JSON = dict[str, Any]

ErrorKind = Literal[
    "rate_limited",  # 429 from upstream (honour retry_after)
    "server",  # 5xx from upstream
    "timeout",  # connect / first byte / total timeout
    "connect",  # connection refused, reset, DNS...
    "stream_cut",  # the stream ended without a finish_reason, or the connection dropped mid-stream
    "bad_request",  # 400/422: the request itself is wrong; retrying elsewhere will not help
    "auth",  # 401/403 from upstream: our credentials are wrong
    "not_found",  # 404: model unknown upstream
    "overloaded",  # provider-specific overload signal (e.g. Anthropic 529)
]

RETRYABLE: frozenset[str] = frozenset({"rate_limited", "server", "timeout", "connect", "overloaded"})


class ProviderError(Exception):
    """An upstream call failed.

    `kind` decides what the gateway does next: retryable kinds are retried with backoff and then fall over to
    the next model of the chain (only before the first byte reached the client); others are returned to the
    client at once. `status` is the upstream HTTP status when there was one; `retry_after` is in seconds.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    def __repr__(self) -> str:
        return f"ProviderError({self.kind!r}, {self.message!r}, status={self.status})"


@dataclass(frozen=True, slots=True)
class Deployment:
    """Where and how to call one upstream model."""

    provider: str  # registry key: "openai", "anthropic", "openai_compatible", "simulator"
    model: str  # the upstream's own model name, e.g. "gpt-4o-mini", "claude-sonnet-4-5", "sim/fast"
    base_url: str  # e.g. "https://api.openai.com/v1", "https://api.anthropic.com", "http://127.0.0.1:8100/v1"
    api_key: str = field(default="", repr=False)
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    first_byte: float = 60.0  # until the response head (non-streaming: the whole answer) arrives
    total: float = 600.0


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False  # True when counted offline because the provider reported none


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole answer: `body` is an OpenAI `chat.completion` object (its `usage` included when known)."""

    body: JSON
    usage: Usage | None


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One OpenAI `chat.completion.chunk`, serialised (`data` is the JSON, without SSE framing).

    `finish_reason` is set on the chunk that carries one; `usage` on the chunk that reports usage;
    `usage_only` marks the final `choices: []` usage chunk, which the gateway drops when the client did not
    ask for `stream_options.include_usage`. `text` is the content delta, for offline counting when no usage
    arrives.
    """

    data: bytes
    finish_reason: str | None = None
    usage: Usage | None = None
    usage_only: bool = False
    text: str = ""


class Provider(ABC):
    """One upstream API. Implementations are stateless; the HTTP client is pooled and passed in."""

    name: str

    @abstractmethod
    async def complete(
        self, body: JSON, deployment: Deployment, client: httpx.AsyncClient, timeouts: Timeouts
    ) -> Completion:
        """Send a non-streaming request. Raises ProviderError on any failure."""

    @abstractmethod
    def stream(
        self, body: JSON, deployment: Deployment, client: httpx.AsyncClient, timeouts: Timeouts
    ) -> AsyncIterator[StreamChunk]:
        """Send a streaming request and yield OpenAI chunks as they arrive (never buffered).

        Raises ProviderError before the first chunk (the gateway may then fall over to another model) or
        during iteration (kind "stream_cut" when the stream ends without a finish_reason). Always asks an
        upstream for its usage report. Closing the iterator early (client gone) closes the upstream response.
        """
