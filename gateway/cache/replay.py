"""Turning a cached answer back into a response, in whichever mode the new request asks for.

An entry keeps the answer as a `chat.completion` body, plus the original stream's chunks when it was streamed.
A streaming hit replays the stored chunks (or chunks made from the body, for an answer that was not streamed);
a JSON hit returns the body (assembled from the chunks, for an answer that was streamed). Either way the
response gets a new id and timestamp, and usage is sent only when the request asks for it, as OpenAI does.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

Chunk = dict[str, Any]


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion_from_chunks(chunks: list[Chunk], usage: dict[str, int] | None) -> dict[str, Any]:
    """The chat.completion a stream of chunks adds up to: content, refusals and tool calls concatenated."""
    choices: dict[int, dict[str, Any]] = {}
    first = chunks[0] if chunks else {}
    for chunk in chunks:
        for choice in chunk.get("choices") or ():
            index = int(choice.get("index", 0))
            merged = choices.setdefault(
                index,
                {"index": index, "message": {"role": "assistant", "content": None}, "finish_reason": None},
            )
            delta = choice.get("delta") or {}
            message = merged["message"]
            for field in ("content", "refusal"):
                if isinstance(delta.get(field), str):
                    message[field] = (message.get(field) or "") + delta[field]
            for call in delta.get("tool_calls") or ():
                calls = message.setdefault("tool_calls", [])
                position = int(call.get("index", len(calls)))
                while len(calls) <= position:
                    calls.append({"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
                target = calls[position]
                target["id"] = call.get("id") or target["id"]
                function = call.get("function") or {}
                target["function"]["name"] += function.get("name") or ""
                target["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                merged["finish_reason"] = choice["finish_reason"]
    body: dict[str, Any] = {
        "id": first.get("id", ""),
        "object": "chat.completion",
        "created": first.get("created", int(time.time())),
        "model": first.get("model", ""),
        "choices": [choices[i] for i in sorted(choices)],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def chunks_from_completion(body: dict[str, Any]) -> list[Chunk]:
    """The chunks a stream of this answer would have had: role, content, tool calls, finish."""
    chunks: list[Chunk] = []
    for choice in body.get("choices") or ():
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        chunks.append({"choices": [{"index": index, "delta": {"role": "assistant", "content": ""}}]})
        if message.get("content"):
            chunks.append({"choices": [{"index": index, "delta": {"content": message["content"]}}]})
        if message.get("refusal"):
            chunks.append({"choices": [{"index": index, "delta": {"refusal": message["refusal"]}}]})
        calls = [{"index": position, **call} for position, call in enumerate(message.get("tool_calls") or ())]
        if calls:
            chunks.append({"choices": [{"index": index, "delta": {"tool_calls": calls}}]})
        chunks.append(
            {"choices": [{"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}]}
        )
    return chunks


def replay_body(body: dict[str, Any]) -> dict[str, Any]:
    """The cached chat.completion with a new id and timestamp."""
    return {**body, "id": new_completion_id(), "created": int(time.time())}


def replay_chunks(
    body: dict[str, Any], chunks: list[Chunk] | None, *, include_usage: bool
) -> list[dict[str, Any]]:
    """The chunks of a streamed hit, each with the new id; a final usage chunk when the request asks."""
    header = {
        "id": new_completion_id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", ""),
    }
    stream = [
        {**chunk, **header} for chunk in (chunks if chunks is not None else chunks_from_completion(body))
    ]
    if include_usage and body.get("usage"):
        stream.append({**header, "choices": [], "usage": body["usage"]})
    return stream
