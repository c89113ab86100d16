"""The Anthropic provider: OpenAI chat-completions in, Anthropic's Messages API upstream, OpenAI out.

Translation lives in `anthropic_translate` (pure functions); this module only does the I/O, through the
shared `transport` helpers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import orjson

from gateway.providers import transport
from gateway.providers.anthropic_translate import (
    AnthropicStreamTranslator,
    request_to_anthropic,
    response_from_anthropic,
    usage_from_anthropic,
)
from gateway.providers.base import (
    JSON,
    Completion,
    Deployment,
    Provider,
    ProviderError,
    StreamChunk,
    Timeouts,
)

ANTHROPIC_VERSION = "2023-06-01"


def build_request(body: JSON, deployment: Deployment, *, stream: bool) -> httpx.Request:
    """The POST to `{base_url}/v1/messages` for an OpenAI request body.

    Raises ProviderError("bad_request") when the body cannot be translated (see `request_to_anthropic`).
    """
    payload = request_to_anthropic(body, deployment.model, stream=stream)
    headers = {
        "x-api-key": deployment.api_key,
        "anthropic-version": ANTHROPIC_VERSION,
        "content-type": "application/json",
        **dict(deployment.headers),
    }
    url = f"{deployment.base_url.rstrip('/')}/v1/messages"
    return httpx.Request("POST", url, headers=headers, content=orjson.dumps(payload))


class AnthropicProvider(Provider):
    name = "anthropic"

    async def complete(
        self, body: JSON, deployment: Deployment, client: httpx.AsyncClient, timeouts: Timeouts
    ) -> Completion:
        """Send a non-streaming request; the answer comes back as an OpenAI `chat.completion`.

        Raises ProviderError: "bad_request" for an untranslatable body, the transport's kinds for upstream
        failures, "server" when the upstream's answer is not a JSON Anthropic message.
        """
        request = build_request(body, deployment, stream=False)
        response = await transport.send(client, request, timeouts, stream=False)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError as error:
            raise ProviderError("server", "upstream answered invalid JSON") from error
        if not isinstance(data, dict):
            raise ProviderError("server", "upstream answered JSON that is not an object")
        answer = response_from_anthropic(data, model=deployment.model, created=int(time.time()))
        _, usage = usage_from_anthropic(data.get("usage") or {})
        return Completion(body=answer, usage=usage)

    async def stream(
        self, body: JSON, deployment: Deployment, client: httpx.AsyncClient, timeouts: Timeouts
    ) -> AsyncIterator[StreamChunk]:
        """Send a streaming request and yield OpenAI chunks as Anthropic's events arrive.

        Raises ProviderError: as `complete` before the first chunk; during iteration the kind of an `error`
        event (e.g. "overloaded"), "stream_cut" when the stream ends or breaks before `message_stop` or
        carries an event that is not a JSON object, "timeout" past the total timeout. The upstream response
        is closed however the iteration ends, including when the consumer closes this generator early.
        """
        request = build_request(body, deployment, stream=True)
        response = await transport.send(client, request, timeouts, stream=True)
        translator = AnthropicStreamTranslator(model=deployment.model, created=int(time.time()))
        try:
            async for event, raw in transport.iter_sse(response, timeouts):
                try:
                    data = orjson.loads(raw)
                except orjson.JSONDecodeError as error:
                    raise ProviderError("stream_cut", f"upstream sent a malformed {event} event") from error
                if not isinstance(data, dict):
                    raise ProviderError("stream_cut", f"upstream sent a malformed {event} event")
                for chunk in translator.feed(event, data):
                    yield chunk
                if translator.finished:
                    return
            raise ProviderError("stream_cut", "upstream stream ended before message_stop")
        finally:
            await response.aclose()
