"""OpenAI's Chat Completions API, and every server that speaks it (vLLM, Ollama, Together, Groq, the
simulator): the request is passed through with the deployment's model name; streamed chunks are forwarded
as the upstream sent them, byte for byte. Usage is always asked for (`stream_options.include_usage`), so a
streamed answer is metered with the provider's own count whatever the client asked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from gateway.providers.base import (
    JSON,
    Completion,
    Deployment,
    Provider,
    ProviderError,
    StreamChunk,
    Timeouts,
    Usage,
)
from gateway.providers.transport import iter_sse, send

DONE = b"[DONE]"


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    prompt, completion = data.get("prompt_tokens"), data.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def _request(body: JSON, deployment: Deployment, *, stream: bool) -> httpx.Request:
    payload = dict(body)
    payload["model"] = deployment.model
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    else:
        payload.pop("stream", None)
        payload.pop("stream_options", None)
    headers = [("content-type", "application/json"), *deployment.headers]
    if deployment.api_key:
        headers.append(("authorization", f"Bearer {deployment.api_key}"))
    return httpx.Request(
        "POST",
        f"{deployment.base_url.rstrip('/')}/chat/completions",
        content=orjson.dumps(payload),
        headers=headers,
    )


def chunk_from_event(data: bytes) -> StreamChunk:
    """Describe one upstream chunk. Raises ProviderError for an error event."""
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ProviderError("stream_cut", "upstream sent a malformed stream chunk") from error
    if not isinstance(chunk, dict):
        raise ProviderError("stream_cut", "upstream sent a malformed stream chunk")
    if "error" in chunk:
        detail = chunk["error"]
        message = detail.get("message") if isinstance(detail, dict) else str(detail)
        raise ProviderError("server", f"upstream error mid-stream: {message}")
    choices = chunk.get("choices") or []
    finish = None
    text = ""
    for choice in choices:
        if isinstance(choice, dict):
            finish = choice.get("finish_reason") or finish
            delta = choice.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                text += delta["content"]
    usage = _usage(chunk.get("usage"))
    return StreamChunk(data=data, finish_reason=finish, usage=usage, usage_only=not choices, text=text)


class OpenAIProvider(Provider):
    name = "openai"

    async def complete(
        self, body: JSON, deployment: Deployment, client: httpx.AsyncClient, timeouts: Timeouts
    ) -> Completion:
        response = await send(client, _request(body, deployment, stream=False), timeouts, stream=False)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError as error:
            raise ProviderError("server", "upstream answered with invalid JSON") from error
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise ProviderError("server", "upstream answer is not a chat completion")
        return Completion(body=data, usage=_usage(data.get("usage")))

    async def stream(
        self, body: JSON, deployment: Deployment, client: httpx.AsyncClient, timeouts: Timeouts
    ) -> AsyncIterator[StreamChunk]:
        response = await send(client, _request(body, deployment, stream=True), timeouts, stream=True)
        finished = False
        try:
            async for _event, data in iter_sse(response, timeouts):
                if data == DONE:
                    return
                chunk = chunk_from_event(data)
                finished = finished or chunk.finish_reason is not None
                yield chunk
        finally:
            await response.aclose()
        if not finished:
            raise ProviderError("stream_cut", "upstream stream ended before a finish_reason")
