"""OpenAI Chat Completions wire format: `chat.completion` bodies, `chat.completion.chunk` streams and error
bodies (`{"error": {"message", "type", "param", "code"}}`), as OpenAI documents them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson

from gateway.simulator.answers import Answer, Choice
from gateway.simulator.parsing import SimRequest
from gateway.simulator.sse import DONE, Frame, sse

JSON = dict[str, Any]

_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    404: ("invalid_request_error", "unknown_url"),
    405: ("invalid_request_error", None),
    413: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


def error_body(status: int, message: str, param: str | None = None) -> bytes:
    """An OpenAI error body for `status`."""
    kind, code = _ERRORS.get(status, ("server_error", None))
    return orjson.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}})


def _usage(answer: Answer) -> JSON:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


def _tool_calls(choice: Choice) -> list[JSON]:
    call = choice.tool_call
    assert call is not None
    return [
        {
            "id": f"call_{call.id}",
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
    ]


def _message(choice: Choice) -> JSON:
    if choice.tool_call is not None:
        return {"role": "assistant", "content": None, "tool_calls": _tool_calls(choice)}
    return {"role": "assistant", "content": choice.text}


def completion_body(request: SimRequest, answer: Answer) -> bytes:
    """A whole `chat.completion`, usage included."""
    return orjson.dumps(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {"index": i, "message": _message(c), "logprobs": None, "finish_reason": c.finish}
                for i, c in enumerate(answer.choices)
            ],
            "usage": _usage(answer),
        }
    )


def _first_delta(choice: Choice) -> JSON:
    if choice.tool_call is None:
        return {"role": "assistant", "content": ""}
    call = choice.tool_call
    function = {"name": call.name, "arguments": ""}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"index": 0, "id": f"call_{call.id}", "type": "function", "function": function}],
    }


def _delta(choice: Choice, piece: str) -> JSON:
    if choice.tool_call is None:
        return {"content": piece}
    return {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}


def stream_frames(request: SimRequest, answer: Answer) -> Iterator[Frame]:
    """The chunks of a streamed answer, then (with `stream_options.include_usage`) the `choices: []` usage
    chunk, then `data: [DONE]`. Choices advance one token per step; each chunk carries one choice."""
    head: JSON = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.model,
    }
    extra: JSON = {"usage": None} if request.include_usage else {}

    def chunk(index: int, delta: JSON, finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**head, "choices": [choice], **extra})

    for i, choice in enumerate(answer.choices):
        yield Frame(chunk(i, _first_delta(choice)))
    for step in range(answer.steps):
        for i, choice in enumerate(answer.choices):
            if step < len(choice.pieces):
                yield Frame(chunk(i, _delta(choice, choice.pieces[step])), step=step, content=True)
    last = max(answer.steps - 1, 0)
    for i, choice in enumerate(answer.choices):
        yield Frame(chunk(i, {}, choice.finish), step=last)
    if request.include_usage:
        yield Frame(sse({**head, "choices": [], "usage": _usage(answer)}), step=last)
    yield Frame(DONE, step=last)


def models_body(names: tuple[str, ...]) -> bytes:
    """`GET /v1/models`: the simulator's catalogue as an OpenAI list."""
    data = [
        {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "gatehouse-simulator"}
        for name in names
    ]
    return orjson.dumps({"object": "list", "data": data})
