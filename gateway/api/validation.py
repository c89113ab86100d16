"""Validation of chat-completions request bodies against OpenAI's schema, with OpenAI's error messages.

Fast and hand-written (this runs on every request): it checks what the gateway and the providers rely on and
passes other fields through untouched, as OpenAI-compatible servers do.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.api.errors import invalid
from gateway.providers.base import JSON

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})
MAX_N = 16
MAX_STOP = 4
MAX_METADATA = 16


def _number(body: JSON, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(f"'{name}' must be a number.", param=name, code="invalid_type")
    if not low <= value <= high:
        raise invalid(f"'{name}' must be between {low:g} and {high:g}, got {value}.", param=name)


def _integer(body: JSON, name: str, low: int, high: int) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"'{name}' must be an integer.", param=name, code="invalid_type")
    if not low <= value <= high:
        raise invalid(f"'{name}' must be between {low} and {high}, got {value}.", param=name)


def _content(message: JSON, index: int) -> None:
    content = message.get("content")
    param = f"messages[{index}].content"
    if content is None:
        if message.get("role") in ("assistant", "function") or message.get("tool_calls"):
            return
        raise invalid(f"'{param}' is required.", param=param)
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid(f"'{param}' must be a string or an array of content parts.", param=param)
    for part_index, part in enumerate(content):
        part_param = f"{param}[{part_index}]"
        if not isinstance(part, dict) or part.get("type") not in PART_TYPES:
            raise invalid(f"'{part_param}' must be a content part with a known 'type'.", param=part_param)
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            raise invalid(f"'{part_param}.text' must be a string.", param=part_param)
        if part["type"] == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or not url:
                raise invalid(f"'{part_param}.image_url.url' must be a URL string.", param=part_param)


def _messages(body: JSON) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("'messages' must be a non-empty array.", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid(f"'messages[{index}]' must be an object.", param=f"messages[{index}]")
        if message.get("role") not in ROLES:
            raise invalid(
                f"'messages[{index}].role' must be one of {', '.join(sorted(ROLES))}.",
                param=f"messages[{index}].role",
            )
        _content(message, index)
        if message["role"] == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise invalid(
                f"'messages[{index}].tool_call_id' is required for tool messages.",
                param=f"messages[{index}].tool_call_id",
            )
        tool_calls = message.get("tool_calls")
        if tool_calls is not None and not isinstance(tool_calls, list):
            raise invalid(f"'messages[{index}].tool_calls' must be an array.", param="messages")


def _tools(body: JSON) -> None:
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise invalid("'tools' must be an array.", param="tools")
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise invalid(f"'tools[{index}]' must be a function tool with a name.", param=f"tools[{index}]")


def _stop_and_metadata(body: JSON) -> None:
    stop = body.get("stop")
    stop_ok = stop is None or isinstance(stop, str)
    stop_ok = stop_ok or (
        isinstance(stop, list) and len(stop) <= MAX_STOP and all(isinstance(s, str) for s in stop)
    )
    if not stop_ok:
        raise invalid(f"'stop' must be a string or an array of up to {MAX_STOP} strings.", param="stop")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or len(metadata) > MAX_METADATA:
            raise invalid(f"'metadata' must be an object of up to {MAX_METADATA} pairs.", param="metadata")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise invalid("'metadata' keys and values must be strings.", param="metadata")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise invalid("'user' must be a string.", param="user")


def _stream(body: JSON) -> None:
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid("'stream' must be a boolean.", param="stream")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise invalid("'stream_options' must be an object.", param="stream_options")
        if not stream:
            raise invalid("'stream_options' is only allowed when 'stream' is true.", param="stream_options")
        if not isinstance(options.get("include_usage", False), bool):
            raise invalid("'stream_options.include_usage' must be a boolean.", param="stream_options")


def chat_request_parse(raw: bytes) -> JSON:
    """Parse and validate a chat-completions body. Raises ApiError(400) with OpenAI's wording."""
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid(
            "We could not parse the JSON body of your request. The body must be valid JSON.",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", code="invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid("you must provide a model parameter", param="model")
    _messages(body)
    _stream(body)
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "presence_penalty", -2, 2)
    _number(body, "frequency_penalty", -2, 2)
    _integer(body, "n", 1, MAX_N)
    _integer(body, "max_tokens", 1, 10_000_000)
    _integer(body, "max_completion_tokens", 1, 10_000_000)
    _tools(body)
    _stop_and_metadata(body)
    return body
