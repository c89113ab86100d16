"""Anthropic Messages API stream events → OpenAI `chat.completion.chunk` objects. Pure, no I/O.

Anthropic's event flow: `message_start`, then per content block `content_block_start`, any number of
`content_block_delta` and `content_block_stop`, then `message_delta` (stop_reason, cumulative usage) and
`message_stop`; `ping` events may come anywhere, an `error` event can arrive after the 200 status.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.providers.anthropic_response import (
    error_from_anthropic_event,
    finish_reason_from_anthropic,
    tool_call,
    usage_from_anthropic,
)
from gateway.providers.base import JSON, StreamChunk


class AnthropicStreamTranslator:
    """Feed it Anthropic stream events in order; it returns the OpenAI chunks each one becomes.

    The first chunk carries `{"role": "assistant", "content": ""}`; text deltas become `content`; each
    `tool_use` block becomes a tool call whose `index` is its position among the tool calls, announced with
    its id, type and name (arguments "") and then grown by the `input_json_delta` fragments. `message_delta`
    yields the chunk with `finish_reason`; `message_stop` the usage-only chunk (`choices: []`) when
    `include_usage`. All chunks share one id, "chatcmpl-" + the Anthropic message id. `finished` tells
    whether `message_stop` was seen, so that the caller can detect a cut stream.
    """

    def __init__(self, *, model: str, created: int, include_usage: bool = True) -> None:
        self.model = model
        self.created = created
        self.include_usage = include_usage
        self.id = "chatcmpl-"
        self.finished = False
        self._usage: JSON = {}
        self._tools: dict[int, int] = {}  # content block index -> tool call position

    def feed(self, event: str, data: JSON) -> list[StreamChunk]:
        """The chunks for one event (often none). Unknown event types are ignored, as Anthropic asks.

        Raises ProviderError for an `error` event (see `error_from_anthropic_event` for the kinds).
        """
        kind = event or str(data.get("type", ""))
        if kind == "message_start":
            return self._message_start(data.get("message") or {})
        if kind == "content_block_start":
            return self._block_start(data.get("index"), data.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(data.get("index"), data.get("delta") or {})
        if kind == "message_delta":
            return self._message_delta(data)
        if kind == "message_stop":
            return self._message_stop()
        if kind == "error":
            raise error_from_anthropic_event(data)
        return []  # ping, content_block_stop, and event types added later

    def _message_start(self, message: JSON) -> list[StreamChunk]:
        self.id = f"chatcmpl-{message.get('id', '')}"
        self._add_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, index: Any, block: JSON) -> list[StreamChunk]:
        if block.get("type") == "text" and block.get("text"):
            return [self._text(block["text"])]
        if block.get("type") != "tool_use" or not isinstance(index, int):
            return []
        position = self._tools[index] = len(self._tools)
        call = tool_call({"id": block.get("id"), "name": block.get("name")})
        call["function"]["arguments"] = ""
        return [self._chunk({"tool_calls": [{"index": position, **call}]})]

    def _block_delta(self, index: Any, delta: JSON) -> list[StreamChunk]:
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [self._text(delta["text"])]
        if delta.get("type") == "input_json_delta" and index in self._tools and delta.get("partial_json"):
            fragment = {"index": self._tools[index], "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [fragment]})]
        return []  # thinking, signature and citation deltas have no OpenAI equivalent

    def _message_delta(self, data: JSON) -> list[StreamChunk]:
        self._add_usage(data.get("usage"))
        stop_reason = (data.get("delta") or {}).get("stop_reason")
        if stop_reason is None:
            return []
        finish_reason = finish_reason_from_anthropic(stop_reason)
        return [self._chunk({}, finish_reason=finish_reason)]

    def _message_stop(self) -> list[StreamChunk]:
        self.finished = True
        if not self.include_usage:
            return []
        openai, usage = usage_from_anthropic(self._usage)
        body = {**self._base(), "choices": [], "usage": openai}
        return [StreamChunk(data=orjson.dumps(body), usage=usage, usage_only=True)]

    def _add_usage(self, usage: Any) -> None:
        """Counts are cumulative: a later event's count replaces an earlier one (nulls are skipped)."""
        if isinstance(usage, dict):
            self._usage.update({key: value for key, value in usage.items() if value is not None})

    def _base(self) -> JSON:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }

    def _text(self, text: str) -> StreamChunk:
        chunk = self._chunk({"content": text})
        return StreamChunk(data=chunk.data, text=text)

    def _chunk(self, delta: JSON, *, finish_reason: str | None = None) -> StreamChunk:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        body = {**self._base(), "choices": [choice]}
        return StreamChunk(data=orjson.dumps(body), finish_reason=finish_reason)
