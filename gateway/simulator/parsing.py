"""Request bodies of both wire formats, checked and reduced to what the simulator needs (`SimRequest`).

`parse_openai` and `parse_anthropic` raise `BadRequestError` for anything the real API would refuse with a
400: a body that is not a JSON object, a missing model or messages, values of the wrong type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

JSON = dict[str, Any]

_WEATHER = re.compile(r"\bweather\b", re.IGNORECASE)
MAX_CHOICES = 16


class BadRequestError(ValueError):
    """The request is malformed; `param` names the offending field when there is one."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """The tool the simulated model decided to call, with its JSON Schema for the arguments."""

    name: str
    schema: JSON


@dataclass(frozen=True, slots=True)
class SimRequest:
    """What both wire formats have in common, after validation."""

    model: str
    raw: bytes  # the exact body received (sim/echo answers with it)
    stream: bool
    prompt_text: str  # all message text, for counting prompt tokens
    last_user: str  # the last user message's text, which seeds the answer
    max_tokens: int | None = None
    n: int = 1
    stops: tuple[str, ...] = ()
    include_usage: bool = False
    tool: ToolSpec | None = None


def _load(raw: bytes) -> JSON:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequestError("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise BadRequestError("The request body must be a JSON object.")
    return body


def _text(content: object) -> str:
    """The text of a message's content: a string, or the text parts of a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _messages(body: JSON) -> list[JSON]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequestError("'messages' must be a non-empty array.", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequestError(f"messages[{i}] must be an object with a 'role'.", f"messages[{i}]")
    return messages


def _model(body: JSON) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequestError("'model' must be a non-empty string.", "model")
    return model


def _optional_int(body: JSON, key: str, *, low: int, high: int) -> int | None:
    value: object = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequestError(f"'{key}' must be an integer from {low} to {high}.", key)
    return value


def _stops(value: object, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(s for s in value if s)
    raise BadRequestError(f"'{key}' must be a string or an array of strings.", key)


def _stream(body: JSON) -> bool:
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequestError("'stream' must be a boolean.", "stream")
    return stream


def _tool_list(body: JSON) -> list[object]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise BadRequestError("'tools' must be an array.", "tools")
    return tools


def _pick_tool(
    tools: dict[str, JSON], forced: str | None, required: bool, last_user: str | None
) -> ToolSpec | None:
    """The tool to call: the forced one, else (when required or the user asks about weather) a weather
    tool or the first one. `last_user` is None when the conversation ends in a tool result."""
    if forced is not None:
        if forced not in tools:
            raise BadRequestError(f"tool_choice names an unknown tool: {forced!r}.", "tool_choice")
        return ToolSpec(forced, tools[forced])
    if not tools or not (required or (last_user is not None and _WEATHER.search(last_user))):
        return None
    name = next((name for name in tools if "weather" in name.lower()), next(iter(tools)))
    return ToolSpec(name, tools[name])


def _openai_tool(body: JSON, messages: list[JSON], last_user: str) -> ToolSpec | None:
    tools: dict[str, JSON] = {}
    for tool in _tool_list(body):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRequestError(
                "each tool must be {'type': 'function', 'function': {'name': ...}}.", "tools"
            )
        parameters = function.get("parameters")
        tools[function["name"]] = parameters if isinstance(parameters, dict) else {}
    choice = body.get("tool_choice", "auto")
    if choice == "none":
        return None
    forced = None
    if isinstance(choice, dict):
        function = choice.get("function")
        forced = function.get("name") if isinstance(function, dict) else None
        if not isinstance(forced, str):
            raise BadRequestError("tool_choice must name a function.", "tool_choice")
    user_turn = last_user if messages[-1].get("role") == "user" else None
    return _pick_tool(tools, forced, choice == "required", user_turn)


def parse_openai(raw: bytes) -> SimRequest:
    """A `POST /v1/chat/completions` body. Raises BadRequestError."""
    body = _load(raw)
    model = _model(body)
    messages = _messages(body)
    users = [m for m in messages if m["role"] == "user"]
    last_user = _text(users[-1].get("content")) if users else ""
    max_tokens = _optional_int(body, "max_completion_tokens", low=1, high=10_000_000)
    if max_tokens is None:
        max_tokens = _optional_int(body, "max_tokens", low=1, high=10_000_000)
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise BadRequestError("'stream_options' must be an object.", "stream_options")
    return SimRequest(
        model=model,
        raw=raw,
        stream=_stream(body),
        prompt_text="\n".join(_text(m.get("content")) for m in messages),
        last_user=last_user,
        max_tokens=max_tokens,
        n=_optional_int(body, "n", low=1, high=MAX_CHOICES) or 1,
        stops=_stops(body.get("stop"), "stop"),
        include_usage=bool(options and options.get("include_usage") is True),
        tool=_openai_tool(body, messages, last_user),
    )


def _anthropic_tool(body: JSON, messages: list[JSON], last_user: str) -> ToolSpec | None:
    tools: dict[str, JSON] = {}
    for tool in _tool_list(body):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise BadRequestError("each tool must be an object with a 'name'.", "tools")
        schema = tool.get("input_schema")
        tools[tool["name"]] = schema if isinstance(schema, dict) else {}
    choice = body.get("tool_choice") or {"type": "auto"}
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise BadRequestError("tool_choice.type must be auto, any, tool or none.", "tool_choice")
    if kind == "none":
        return None
    forced = choice.get("name") if kind == "tool" else None
    if kind == "tool" and not isinstance(forced, str):
        raise BadRequestError("tool_choice of type 'tool' needs a 'name'.", "tool_choice")
    last = messages[-1]
    content = last.get("content")
    answered = isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )
    user_turn = last_user if last["role"] == "user" and not answered else None
    return _pick_tool(tools, forced, kind == "any", user_turn)


def parse_anthropic(raw: bytes) -> SimRequest:
    """A `POST /v1/messages` body. Raises BadRequestError; like the real API, `max_tokens` is required."""
    body = _load(raw)
    model = _model(body)
    messages = _messages(body)
    max_tokens = _optional_int(body, "max_tokens", low=1, high=10_000_000)
    if max_tokens is None:
        raise BadRequestError("max_tokens: Field required", "max_tokens")
    users = [m for m in messages if m["role"] == "user"]
    last_user = _text(users[-1].get("content")) if users else ""
    texts = [_text(body.get("system")), *(_text(m.get("content")) for m in messages)]
    return SimRequest(
        model=model,
        raw=raw,
        stream=_stream(body),
        prompt_text="\n".join(t for t in texts if t),
        last_user=last_user,
        max_tokens=max_tokens,
        stops=_stops(body.get("stop_sequences"), "stop_sequences"),
        tool=_anthropic_tool(body, messages, last_user),
    )
