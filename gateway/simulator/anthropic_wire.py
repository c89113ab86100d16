"""Anthropic Messages API wire format: `message` bodies, the documented stream event sequence
(message_start, content_block_start, ping, content_block_delta..., content_block_stop, message_delta,
message_stop) and error bodies (`{"type": "error", "error": {"type", "message"}, "request_id"}`).

Anthropic has no `n`: only the first choice of an answer is used.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson

from gateway.simulator.answers import Answer, Choice
from gateway.simulator.parsing import SimRequest
from gateway.simulator.sse import Frame, sse

JSON = dict[str, Any]

_ERRORS: dict[int, str] = {
    400: "invalid_request_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
}


def request_id() -> str:
    return f"req_sim{uuid.uuid4().hex[:20]}"


def error_body(status: int, message: str, param: str | None = None) -> bytes:
    """An Anthropic error body for `status` (Anthropic names no parameter; `param` is ignored)."""
    error = {"type": _ERRORS.get(status, "api_error"), "message": message}
    return orjson.dumps({"type": "error", "error": error, "request_id": request_id()})


def stop_reason(choice: Choice) -> str:
    if choice.finish == "tool_calls":
        return "tool_use"
    if choice.finish == "length":
        return "max_tokens"
    return "stop_sequence" if choice.stop_sequence is not None else "end_turn"


def _block(choice: Choice) -> JSON | None:
    call = choice.tool_call
    if call is not None:
        return {
            "type": "tool_use",
            "id": f"toolu_{call.id}",
            "name": call.name,
            "input": orjson.loads(call.arguments),
        }
    return {"type": "text", "text": choice.text} if choice.text else None


def _envelope(request: SimRequest, message_id: str) -> JSON:
    return {"id": message_id, "type": "message", "role": "assistant", "model": request.model}


def message_body(request: SimRequest, answer: Answer) -> bytes:
    """A whole `message`, usage included."""
    choice = answer.choices[0]
    block = _block(choice)
    return orjson.dumps(
        {
            **_envelope(request, f"msg_sim{uuid.uuid4().hex[:20]}"),
            "content": [block] if block else [],
            "stop_reason": stop_reason(choice),
            "stop_sequence": choice.stop_sequence,
            "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": choice.tokens},
        }
    )


def _start_block(choice: Choice) -> JSON:
    call = choice.tool_call
    if call is None:
        return {"type": "text", "text": ""}
    return {"type": "tool_use", "id": f"toolu_{call.id}", "name": call.name, "input": {}}


def _delta(choice: Choice, piece: str) -> JSON:
    if choice.tool_call is None:
        return {"type": "text_delta", "text": piece}
    return {"type": "input_json_delta", "partial_json": piece}


def stream_frames(request: SimRequest, answer: Answer) -> Iterator[Frame]:
    """The event sequence of a streamed message. As in Anthropic's own streams, `message_start` reports
    the input tokens (and 1 output token); `message_delta` carries the stop reason and the final count."""
    choice = answer.choices[0]
    message = {
        **_envelope(request, f"msg_sim{uuid.uuid4().hex[:20]}"),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": 1},
    }
    yield Frame(sse({"type": "message_start", "message": message}, "message_start"))
    start = {"type": "content_block_start", "index": 0, "content_block": _start_block(choice)}
    yield Frame(sse(start, "content_block_start"))
    yield Frame(sse({"type": "ping"}, "ping"))
    for step, piece in enumerate(choice.pieces):
        delta = {"type": "content_block_delta", "index": 0, "delta": _delta(choice, piece)}
        yield Frame(sse(delta, "content_block_delta"), step=step, content=True)
    last = max(choice.tokens - 1, 0)
    yield Frame(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"), step=last)
    end = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(choice), "stop_sequence": choice.stop_sequence},
        "usage": {"output_tokens": choice.tokens},
    }
    yield Frame(sse(end, "message_delta"), step=last)
    yield Frame(sse({"type": "message_stop"}, "message_stop"), step=last)
