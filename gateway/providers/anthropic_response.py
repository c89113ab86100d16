"""Anthropic Messages API answers → OpenAI chat-completions answers. Pure functions, no I/O.

HTTP error statuses need nothing Anthropic-specific: their body, `{"type": "error", "error": {"type": ...,
"message": ...}}`, is read by `transport.error_from_response`, which maps 529 to "overloaded" and honours
`retry-after`. Errors that arrive as an `error` event inside a 200 stream are mapped here.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.providers.base import JSON, ErrorKind, ProviderError, Usage

_FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_EVENT_ERROR_KINDS: dict[str, ErrorKind] = {
    "overloaded_error": "overloaded",
    "api_error": "server",
    "rate_limit_error": "rate_limited",
}


def finish_reason_from_anthropic(stop_reason: str | None) -> str:
    """OpenAI's finish_reason for an Anthropic stop_reason ("stop" for reasons without an equivalent)."""
    return _FINISH_REASONS.get(stop_reason or "", "stop")


def _count(usage: JSON, key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) else 0


def usage_from_anthropic(usage: JSON) -> tuple[JSON, Usage]:
    """(OpenAI `usage` object, Usage) for an Anthropic `usage` object.

    Anthropic's `input_tokens` excludes prompt-cache writes and reads, which are billed too: the prompt
    total adds `cache_creation_input_tokens` and `cache_read_input_tokens`, and cache reads are reported as
    OpenAI's `prompt_tokens_details.cached_tokens`.
    """
    cache_read = _count(usage, "cache_read_input_tokens")
    prompt = _count(usage, "input_tokens") + _count(usage, "cache_creation_input_tokens") + cache_read
    completion = _count(usage, "output_tokens")
    openai: JSON = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cache_read:
        openai["prompt_tokens_details"] = {"cached_tokens": cache_read}
    return openai, Usage(prompt_tokens=prompt, completion_tokens=completion)


def tool_call(block: JSON) -> JSON:
    """An OpenAI tool call for an Anthropic `tool_use` block (its `input` object as a JSON string)."""
    arguments = orjson.dumps(block.get("input") or {}).decode()
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": arguments},
    }


def response_from_anthropic(data: JSON, *, model: str, created: int) -> JSON:
    """An OpenAI `chat.completion` for an Anthropic Message.

    Text blocks are joined into `content` (null when the answer holds only tool calls); `tool_use` blocks
    become `tool_calls`; thinking and server-tool blocks are left out. Raises ProviderError("server") when
    `data` is not a Message.
    """
    blocks = data.get("content")
    if data.get("type", "message") != "message" or not isinstance(blocks, list):
        raise ProviderError("server", "upstream answered something that is not an Anthropic message")
    texts = [block.get("text") or "" for block in blocks if block.get("type") == "text"]
    calls = [tool_call(block) for block in blocks if block.get("type") == "tool_use"]
    content: str | None = "".join(texts)
    if not texts and calls:
        content = None
    message: JSON = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    usage, _ = usage_from_anthropic(data.get("usage") or {})
    return {
        "id": f"chatcmpl-{data.get('id', '')}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason_from_anthropic(data.get("stop_reason")),
            }
        ],
        "usage": usage,
    }


def error_from_anthropic_event(data: JSON) -> ProviderError:
    """The ProviderError for an `error` event received inside a stream (the HTTP status was 200).

    `overloaded_error` → "overloaded", `rate_limit_error` → "rate_limited", `api_error` and any other type →
    "server". Returns the error; the caller raises it.
    """
    error: Any = data.get("error")
    kind_name = error.get("type") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    kind = _EVENT_ERROR_KINDS.get(kind_name or "", "server")
    text = f"{kind_name or 'error'}: {message or 'upstream reported an error mid-stream'}"
    return ProviderError(kind, text[:500])
