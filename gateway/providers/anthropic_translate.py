"""OpenAI chat-completions requests → Anthropic Messages API requests. Pure functions, no I/O.

The answer side lives in `anthropic_response` (whole answers, error events) and `anthropic_stream` (SSE
events → chunks); both are re-exported here so callers import one module.

Mapping decisions, lossy ones included:

- `system` and `developer` messages, wherever they appear, are joined (blank line between) into the
  top-level `system` string: Anthropic has no system role inside `messages`.
- Anthropic requires user/assistant alternation: consecutive messages of the same role (after `tool`
  messages became user turns holding `tool_result` blocks) are merged into one message.
- Empty text parts are dropped (Anthropic rejects empty text blocks); a message left empty is dropped.
- `temperature`: OpenAI accepts 0..2, Anthropic 0..1. Values are clamped to 0..1, not scaled: 0.7 keeps
  meaning 0.7, and anything above 1 becomes 1 (the most random Anthropic allows).
- `n` > 1 is refused (ProviderError "bad_request"): Anthropic returns one answer per request.
- `max_completion_tokens` (or the older `max_tokens`) → `max_tokens`, which Anthropic requires: 4096 when
  the client sent neither.
- `response_format` is NOT translated: Anthropic has no JSON mode. A `json_object` / `json_schema` request is
  sent as is, without the format, and the model may answer in prose; we do not fake JSON mode by prompt
  injection or by forcing a tool call.
- `parallel_tool_calls: false` → `tool_choice.disable_parallel_tool_use: true`.
- Dropped without an Anthropic equivalent: `frequency_penalty`, `presence_penalty`, `logit_bias`,
  `logprobs`, `top_logprobs`, `seed`, `service_tier`, `stream_options` (Anthropic always reports usage).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.providers.anthropic_response import (
    error_from_anthropic_event,
    finish_reason_from_anthropic,
    response_from_anthropic,
    usage_from_anthropic,
)
from gateway.providers.anthropic_stream import AnthropicStreamTranslator
from gateway.providers.base import JSON, ProviderError

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "AnthropicStreamTranslator",
    "error_from_anthropic_event",
    "finish_reason_from_anthropic",
    "request_to_anthropic",
    "response_from_anthropic",
    "usage_from_anthropic",
]

DEFAULT_MAX_TOKENS = 4096

_TOOL_CHOICES: dict[str, JSON] = {
    "auto": {"type": "auto"},
    "required": {"type": "any"},
    "none": {"type": "none"},
}


def _bad(message: str) -> ProviderError:
    return ProviderError("bad_request", message, status=400)


def request_to_anthropic(body: JSON, model: str, *, stream: bool) -> JSON:
    """Translate an OpenAI chat-completions request body into an Anthropic Messages API body for `model`.

    See the module docstring for the mapping and what is lost. Raises ProviderError("bad_request") for
    what Anthropic cannot honour or what is malformed: `n` > 1, an unknown role or content part type, an
    image URL that is neither `data:...;base64,` nor http(s), tool-call arguments that are not a JSON
    object, a tool that is not of type function, an unknown `tool_choice`.
    """
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise _bad("n > 1 is not supported by Anthropic models: send one request per choice")

    system, messages = _messages(body.get("messages") or [])
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    out: JSON = {"model": model, "max_tokens": max_tokens, "messages": messages}
    if system:
        out["system"] = system
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif stop:
        out["stop_sequences"] = list(stop)
    temperature = body.get("temperature")
    if temperature is not None:
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(tool) for tool in tools]
        choice = _tool_choice(body.get("tool_choice"), parallel=body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    if stream:
        out["stream"] = True
    return out


def _messages(messages: list[JSON]) -> tuple[str, list[JSON]]:
    """(system text, alternating Anthropic messages)."""
    system: list[str] = []
    turns: list[JSON] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            text = _plain_text(message.get("content"))
            if text:
                system.append(text)
            continue
        if role == "user":
            blocks = _content_blocks(message.get("content"))
        elif role == "assistant":
            blocks = _assistant_blocks(message)
        elif role == "tool":
            role = "user"
            blocks = [_tool_result(message)]
        else:
            raise _bad(f"unsupported message role {role!r}")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        content = turn["content"]
        if len(content) == 1 and content[0].keys() == {"type", "text"}:
            turn["content"] = content[0]["text"]
    return "\n\n".join(system), turns


def _plain_text(content: Any) -> str:
    """The text of a system message: a string or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for part in content:
        if part.get("type") != "text":
            raise _bad(f"system messages take text parts only, not {part.get('type')!r}")
        texts.append(part.get("text") or "")
    return "\n".join(text for text in texts if text)


def _content_blocks(content: Any) -> list[JSON]:
    """User (or tool result) content: a string or a list of OpenAI content parts → Anthropic blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[JSON] = []
    for part in content:
        kind = part.get("type")
        if kind in ("text", "refusal"):
            text = part.get(kind) or ""
            if text:
                blocks.append({"type": "text", "text": text})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            blocks.append(_image(url))
        else:
            raise _bad(f"unsupported content part type {kind!r}")
    return blocks


def _image(url: Any) -> JSON:
    """An image_url (data: URL or http(s) URL) → an Anthropic image block."""
    if not isinstance(url, str):
        raise _bad("image_url.url must be a string")
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not comma or encoding != "base64" or not media_type:
            raise _bad("image data URLs must look like data:<media type>;base64,<data>")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise _bad("image_url.url must be a data: URL or an http(s) URL")


def _assistant_blocks(message: JSON) -> list[JSON]:
    blocks = _content_blocks(message.get("content"))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            decoded = orjson.loads(arguments)
        except orjson.JSONDecodeError as error:
            raise _bad(f"tool call {call.get('id')!r} has arguments that are not valid JSON") from error
        if not isinstance(decoded, dict):
            raise _bad(f"tool call {call.get('id')!r} has arguments that are not a JSON object")
        blocks.append(
            {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": decoded}
        )
    return blocks


def _tool_result(message: JSON) -> JSON:
    content = message.get("content")
    result: JSON = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
    if isinstance(content, str):
        result["content"] = content
    elif content:
        result["content"] = _content_blocks(content)
    return result


def _tool(tool: JSON) -> JSON:
    if tool.get("type") != "function":
        raise _bad(f"unsupported tool type {tool.get('type')!r}: only function tools are translated")
    function = tool.get("function") or {}
    out: JSON = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return out


def _tool_choice(choice: Any, *, parallel: Any) -> JSON | None:
    if choice is None:
        out: JSON | None = {"type": "auto"} if parallel is False else None
    elif isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise _bad(f"unsupported tool_choice {choice!r}")
        out = dict(_TOOL_CHOICES[choice])
    elif isinstance(choice, dict) and choice.get("type") == "function":
        out = {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    else:
        raise _bad("unsupported tool_choice")
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out
