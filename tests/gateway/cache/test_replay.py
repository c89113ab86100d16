"""Cached answers replayed as JSON or as a stream, whichever way they were first made."""

from __future__ import annotations

from typing import Any

from gateway.cache.replay import chunks_from_completion, completion_from_chunks, replay_body, replay_chunks

USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "sim/fast",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
    "usage": USAGE,
}
TOOL_CHUNKS: list[dict[str, Any]] = [
    {
        "id": "x",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}],
    },
    {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get", "arguments": '{"ci'},
                        }
                    ]
                },
            }
        ]
    },
    {
        "choices": [
            {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]}}
        ]
    },
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
]


def _text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_a_stream_adds_up_to_its_completion_with_tool_calls() -> None:
    body = completion_from_chunks(TOOL_CHUNKS, USAGE)

    message = body["choices"][0]["message"]
    assert message["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": '{"city": "Paris"}'}}
    ]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"] == USAGE


def test_a_json_answer_replays_as_a_stream_with_the_same_content_and_usage_on_request() -> None:
    chunks = replay_chunks(COMPLETION, None, include_usage=True)

    assert _text(chunks) == "Paris."
    assert chunks[-1] == {**chunks[-1], "choices": [], "usage": USAGE}
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert chunks[0]["id"] != "chatcmpl-1"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert (
        completion_from_chunks(chunks_from_completion(COMPLETION), USAGE)["choices"] == COMPLETION["choices"]
    )


def test_a_streamed_answer_replays_its_own_chunks_without_usage_unless_asked() -> None:
    chunks = replay_chunks(completion_from_chunks(TOOL_CHUNKS, USAGE), TOOL_CHUNKS, include_usage=False)

    assert [c["choices"] for c in chunks] == [c["choices"] for c in TOOL_CHUNKS]
    assert all("usage" not in c for c in chunks)


def test_a_json_replay_gets_a_new_id() -> None:
    body = replay_body(COMPLETION)
    assert body["id"] != COMPLETION["id"]
    assert body["choices"] == COMPLETION["choices"]
