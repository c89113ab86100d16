"""The Anthropic provider: the pure translation both ways, then the provider end to end over
`httpx.MockTransport` (the exact request that left, the answers that came back). No database, no network.

The fixtures in tests/fixtures/providers/anthropic copy the examples of Anthropic's documentation:
- message_text.json: the example response of the Messages API reference (docs.claude.com/en/api/messages).
- message_tool_use.json: "Example API response with a tool_use content block" of the tool use guide
  (docs.claude.com/en/docs/agents-and-tools/tool-use/implement-tool-use), plus `type`, `stop_sequence`
  and `usage`, which the guide leaves out but every Message has.
- message_cache_read.json: a text answer with the `usage` of the prompt caching guide, second call: the
  prefix read from the cache (docs.claude.com/en/docs/build-with-claude/prompt-caching).
- stream_text.sse, stream_tool_use.sse: "Basic streaming request" and "Streaming request with tool use"
  of the streaming guide (docs.claude.com/en/docs/build-with-claude/streaming), verbatim.
- stream_error.sse: the start of stream_text.sse followed by the guide's "Error events" example.
- error_*.json: the "Error shapes" example of docs.claude.com/en/api/errors, with the error types of
  its "HTTP errors" list (the invalid_request_error message is the guide's alternation example).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.providers.anthropic import AnthropicProvider
from gateway.providers.anthropic_translate import (
    AnthropicStreamTranslator,
    request_to_anthropic,
    response_from_anthropic,
)
from gateway.providers.base import JSON, Completion, Deployment, ProviderError, StreamChunk, Timeouts, Usage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers" / "anthropic"
MODEL = "claude-sonnet-4-5"
DEPLOYMENT = Deployment(
    provider="anthropic",
    model=MODEL,
    base_url="https://api.anthropic.com/",
    api_key="sk-ant-test",
    headers=(("anthropic-beta", "token-efficient-tools-2025-02-19"),),
)
WEATHER_TOOL: JSON = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}
HELLO: JSON = {"model": "my-alias", "messages": [{"role": "user", "content": "Hello"}]}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def translate(**body: Any) -> JSON:
    return request_to_anthropic(
        {"messages": [{"role": "user", "content": "Hi"}], **body}, MODEL, stream=False
    )


# Requests: OpenAI -> Anthropic


def test_system_and_developer_messages_become_one_system_string() -> None:
    out = request_to_anthropic(
        {
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": "Hello"},
            ]
        },
        MODEL,
        stream=False,
    )

    assert out == {
        "model": MODEL,
        "max_tokens": 4096,
        "system": "You are terse.\n\nAnswer in French.",
        "messages": [{"role": "user", "content": "Hello"}],
    }


def test_consecutive_messages_of_one_role_are_merged_and_empty_ones_dropped() -> None:
    out = translate(
        messages=[
            {"role": "user", "content": "One."},
            {"role": "user", "content": [{"type": "text", "text": "Two."}, {"type": "text", "text": ""}]},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "Three."},
        ]
    )

    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "One."},
                {"type": "text", "text": "Two."},
                {"type": "text", "text": "Three."},
            ],
        }
    ]


def test_images_from_data_urls_and_http_urls() -> None:
    parts = [
        {"type": "text", "text": "Compare these."},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
    ]

    out = translate(messages=[{"role": "user", "content": parts}])

    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "Compare these."},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize(
    "url", ["ftp://example.com/cat.jpg", "data:image/png,notbase64", "data:;base64,AAAA", "cat.jpg", None]
)
def test_unusable_image_urls_are_refused(url: object) -> None:
    parts = [{"type": "image_url", "image_url": {"url": url}}]

    with pytest.raises(ProviderError) as caught:
        translate(messages=[{"role": "user", "content": parts}])

    assert caught.value.kind == "bad_request"


def test_tool_calls_and_tool_results_round_trip_into_alternating_turns() -> None:
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
        },
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
    ]
    out = translate(
        messages=[
            {"role": "user", "content": "Weather and time in Paris?"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "call_1", "content": "15 degrees"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "10:00"}]},
            {"role": "user", "content": "And tomorrow?"},
        ],
        tools=[WEATHER_TOOL],
    )

    assert out["messages"] == [
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "15 degrees"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "10:00"}],
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]
    assert out["tools"] == [
        {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", '"Paris"'])
def test_tool_call_arguments_that_are_not_a_json_object_are_refused(arguments: str) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}

    with pytest.raises(ProviderError) as caught:
        translate(messages=[{"role": "assistant", "tool_calls": [call]}])

    assert caught.value.kind == "bad_request"


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        (None, None, None),
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
    ],
)
def test_tool_choice(tool_choice: object, parallel: bool | None, expected: JSON | None) -> None:
    out = translate(tools=[WEATHER_TOOL], tool_choice=tool_choice, parallel_tool_calls=parallel)

    assert out.get("tool_choice") == expected


@pytest.mark.parametrize(
    "body",
    [
        {"n": 2},
        {"tools": [{"type": "web_search"}]},
        {"tools": [WEATHER_TOOL], "tool_choice": "sometimes"},
        {"messages": [{"role": "function", "name": "f", "content": "x"}]},
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
    ],
    ids=["n>1", "tool type", "tool_choice", "role", "content part"],
)
def test_what_anthropic_cannot_honour_is_refused_as_a_bad_request(body: JSON) -> None:
    with pytest.raises(ProviderError) as caught:
        translate(**body)

    assert caught.value.kind == "bad_request"
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, {"max_tokens": 4096}),
        ({"max_tokens": 100}, {"max_tokens": 100}),
        ({"max_tokens": 100, "max_completion_tokens": 200}, {"max_tokens": 200}),
        ({"stop": "END"}, {"stop_sequences": ["END"]}),
        ({"stop": ["END", "STOP"]}, {"stop_sequences": ["END", "STOP"]}),
        ({"temperature": 0.7}, {"temperature": 0.7}),
        ({"temperature": 1.6}, {"temperature": 1.0}),
        ({"temperature": 0}, {"temperature": 0.0}),
        ({"top_p": 0.9}, {"top_p": 0.9}),
        ({"user": "user-42"}, {"metadata": {"user_id": "user-42"}}),
        ({"n": 1}, {}),
        ({"response_format": {"type": "json_object"}, "seed": 7, "presence_penalty": 0.5}, {}),
    ],
)
def test_parameters(body: JSON, expected: JSON) -> None:
    out = translate(**body)

    base = {"model": MODEL, "max_tokens": 4096, "messages": [{"role": "user", "content": "Hi"}]}
    assert out == {**base, **expected}


def test_streaming_requests_ask_for_a_stream() -> None:
    assert request_to_anthropic(HELLO, MODEL, stream=True)["stream"] is True


# Answers: Anthropic -> OpenAI


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ],
)
def test_finish_reasons(stop_reason: str, finish_reason: str) -> None:
    data = {**orjson.loads(fixture("message_text.json")), "stop_reason": stop_reason}

    out = response_from_anthropic(data, model=MODEL, created=1)

    assert out["choices"][0]["finish_reason"] == finish_reason


def test_a_text_answer() -> None:
    out = response_from_anthropic(orjson.loads(fixture("message_text.json")), model=MODEL, created=1700000000)

    assert out == {
        "id": "chatcmpl-msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi! My name is Claude."},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 2095, "completion_tokens": 503, "total_tokens": 2598},
    }


def test_a_tool_use_answer() -> None:
    data = orjson.loads(fixture("message_tool_use.json"))

    message = response_from_anthropic(data, model=MODEL, created=1)["choices"][0]["message"]

    assert message["content"] == "I'll check the current weather in San Francisco for you."
    [call] = message["tool_calls"]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9"
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"location": "San Francisco, CA", "unit": "celsius"}


def test_an_answer_of_tool_calls_only_has_null_content() -> None:
    data = orjson.loads(fixture("message_tool_use.json"))
    data["content"] = data["content"][1:]

    message = response_from_anthropic(data, model=MODEL, created=1)["choices"][0]["message"]

    assert message["content"] is None
    assert len(message["tool_calls"]) == 1


def test_prompt_cache_reads_and_writes_count_as_prompt_tokens() -> None:
    data = orjson.loads(fixture("message_cache_read.json"))
    data["usage"]["cache_creation_input_tokens"] = 100

    usage = response_from_anthropic(data, model=MODEL, created=1)["usage"]

    assert usage == {
        "prompt_tokens": 21 + 100 + 188086,
        "completion_tokens": 393,
        "total_tokens": 21 + 100 + 188086 + 393,
        "prompt_tokens_details": {"cached_tokens": 188086},
    }


def test_something_that_is_not_a_message_is_a_server_error() -> None:
    with pytest.raises(ProviderError) as caught:
        response_from_anthropic(orjson.loads(fixture("error_overloaded.json")), model=MODEL, created=1)

    assert caught.value.kind == "server"


# Streams: Anthropic events -> OpenAI chunks


def sse_events(name: str) -> list[tuple[str, JSON]]:
    """(event, data) pairs of a fixture, for the pure translator."""
    events = []
    for block in fixture(name).decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if line)
        if lines:
            events.append((lines["event"], orjson.loads(lines["data"])))
    return events


def feed_all(translator: AnthropicStreamTranslator, events: list[tuple[str, JSON]]) -> list[StreamChunk]:
    return [chunk for event, data in events for chunk in translator.feed(event, data)]


def test_a_streamed_text_answer_translates_chunk_by_chunk() -> None:
    translator = AnthropicStreamTranslator(model=MODEL, created=1)

    chunks = feed_all(translator, sse_events("stream_text.sse"))

    bodies = [orjson.loads(chunk.data) for chunk in chunks]
    assert [body["choices"][0]["delta"] for body in bodies[:-1]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": "!"},
        {},
    ]
    assert [chunk.text for chunk in chunks] == ["", "Hello", "!", "", ""]
    assert [chunk.finish_reason for chunk in chunks] == [None, None, None, "stop", None]
    assert {body["id"] for body in bodies} == {"chatcmpl-msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"}
    assert {body["object"] for body in bodies} == {"chat.completion.chunk"}
    assert bodies[-1]["choices"] == []
    assert bodies[-1]["usage"] == {"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40}
    assert chunks[-1].usage_only
    assert chunks[-1].usage == Usage(prompt_tokens=25, completion_tokens=15)
    assert translator.finished
    assert all(chunk.data == orjson.dumps(orjson.loads(chunk.data)) for chunk in chunks)  # compact JSON


def test_without_include_usage_there_is_no_usage_chunk() -> None:
    translator = AnthropicStreamTranslator(model=MODEL, created=1, include_usage=False)

    chunks = feed_all(translator, sse_events("stream_text.sse"))

    assert not any(chunk.usage_only for chunk in chunks)
    assert chunks[-1].finish_reason == "stop"
    assert translator.finished


def test_tool_calls_are_indexed_by_their_position_among_tool_calls() -> None:
    translator = AnthropicStreamTranslator(model=MODEL, created=1)
    events: list[tuple[str, JSON]] = [
        ("message_start", {"message": {"id": "msg_1", "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Checking."}}),
        (
            "content_block_start",
            {"index": 1, "content_block": {"type": "tool_use", "id": "toolu_a", "name": "a"}},
        ),
        (
            "content_block_delta",
            {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"x": 1}'}},
        ),
        (
            "content_block_start",
            {"index": 2, "content_block": {"type": "tool_use", "id": "toolu_b", "name": "b"}},
        ),
        ("content_block_delta", {"index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
    ]

    deltas = [orjson.loads(chunk.data)["choices"][0]["delta"] for chunk in feed_all(translator, events)]

    assert deltas[2:] == [
        {
            "tool_calls": [
                {"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "a", "arguments": ""}}
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"x": 1}'}}]},
        {
            "tool_calls": [
                {"index": 1, "id": "toolu_b", "type": "function", "function": {"name": "b", "arguments": ""}}
            ]
        },
        {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
    ]
    assert not translator.finished


def test_cumulative_usage_in_message_delta_replaces_earlier_counts() -> None:
    translator = AnthropicStreamTranslator(model=MODEL, created=1)
    start = {"message": {"id": "msg_1", "usage": {"input_tokens": 5, "output_tokens": 1}}}
    delta = {
        "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
        "usage": {"input_tokens": 12, "cache_read_input_tokens": 30, "output_tokens": 40},
    }

    chunks = feed_all(translator, [("message_start", start), ("message_delta", delta), ("message_stop", {})])

    assert chunks[1].finish_reason == "length"
    assert chunks[-1].usage == Usage(prompt_tokens=42, completion_tokens=40)


@pytest.mark.parametrize(
    ("error_type", "kind"),
    [
        ("overloaded_error", "overloaded"),
        ("api_error", "server"),
        ("rate_limit_error", "rate_limited"),
        ("invalid_request_error", "server"),
    ],
)
def test_error_events(error_type: str, kind: str) -> None:
    translator = AnthropicStreamTranslator(model=MODEL, created=1)

    with pytest.raises(ProviderError) as caught:
        translator.feed("error", {"type": "error", "error": {"type": error_type, "message": "Oops"}})

    assert caught.value.kind == kind
    assert "Oops" in caught.value.message


# The provider over httpx.MockTransport


class Upstream:
    """A MockTransport handler answering one canned response and recording the requests that reached it."""

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        *,
        stream: httpx.AsyncByteStream | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status, self.body, self.stream, self.headers = status, body, stream, headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.stream is not None:
            return httpx.Response(self.status, headers=self.headers, stream=self.stream)
        return httpx.Response(self.status, headers=self.headers, content=self.body)

    @property
    def sent(self) -> JSON:
        [request] = self.requests
        body: JSON = orjson.loads(request.content)
        return body


class Pieces(httpx.AsyncByteStream):
    """A response body arriving in pieces, optionally breaking afterwards; remembers being closed."""

    def __init__(self, data: bytes, size: int = 64, *, then_break: bool = False) -> None:
        self.pieces = [data[i : i + size] for i in range(0, len(data), size)]
        self.then_break = then_break
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece
        if self.then_break:
            raise httpx.ReadError("connection reset by peer")

    async def aclose(self) -> None:
        self.closed = True


def complete(upstream: Upstream, body: JSON = HELLO) -> Completion:
    async def go() -> Completion:
        async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
            return await AnthropicProvider().complete(body, DEPLOYMENT, client, Timeouts())

    return asyncio.run(go())


def stream(upstream: Upstream, body: JSON = HELLO) -> tuple[list[StreamChunk], ProviderError | None]:
    """The chunks received, and the error that ended the stream if one did."""
    chunks: list[StreamChunk] = []

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
            async for chunk in AnthropicProvider().stream(body, DEPLOYMENT, client, Timeouts()):
                chunks.append(chunk)  # noqa: PERF401 (keep the chunks received before an error)

    try:
        asyncio.run(go())
    except ProviderError as error:
        return chunks, error
    return chunks, None


def reassemble(chunks: list[StreamChunk]) -> tuple[str, dict[int, JSON], list[str]]:
    """(content, tool calls by index, finish reasons) as an OpenAI client would rebuild them."""
    text, calls, finishes = "", dict[int, JSON](), list[str]()
    for chunk in chunks:
        for choice in orjson.loads(chunk.data)["choices"]:
            text += choice["delta"].get("content") or ""
            for call in choice["delta"].get("tool_calls") or []:
                whole = calls.setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
                whole["id"] = call.get("id") or whole["id"]
                whole["name"] = call.get("function", {}).get("name") or whole["name"]
                whole["arguments"] += call.get("function", {}).get("arguments") or ""
            if choice["finish_reason"]:
                finishes.append(choice["finish_reason"])
    return text, calls, finishes


def test_complete_sends_the_translated_request_and_translates_the_answer() -> None:
    upstream = Upstream(body=fixture("message_text.json"))
    body = {
        **HELLO,
        "messages": [{"role": "system", "content": "Be brief."}, *HELLO["messages"]],
        "stop": "X",
    }

    completion = complete(upstream, body)

    [request] = upstream.requests
    assert request.method == "POST"
    assert str(request.url) == "https://api.anthropic.com/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["anthropic-beta"] == "token-efficient-tools-2025-02-19"
    assert "authorization" not in request.headers
    assert upstream.sent == {
        "model": MODEL,
        "max_tokens": 4096,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello"}],
        "stop_sequences": ["X"],
    }
    assert completion.body["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hi! My name is Claude.",
    }
    assert completion.body["model"] == MODEL
    assert completion.usage == Usage(prompt_tokens=2095, completion_tokens=503)


def test_complete_with_tools() -> None:
    upstream = Upstream(body=fixture("message_tool_use.json"))
    body = {**HELLO, "tools": [WEATHER_TOOL], "tool_choice": "required"}

    completion = complete(upstream, body)

    assert upstream.sent["tools"][0]["name"] == "get_weather"
    assert upstream.sent["tool_choice"] == {"type": "any"}
    choice = completion.body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert completion.usage == Usage(prompt_tokens=472, completion_tokens=65)


def test_complete_counts_cached_prompt_tokens() -> None:
    completion = complete(Upstream(body=fixture("message_cache_read.json")))

    assert completion.usage == Usage(prompt_tokens=21 + 188086, completion_tokens=393)
    assert completion.body["usage"]["prompt_tokens_details"] == {"cached_tokens": 188086}


def test_an_untranslatable_request_never_leaves() -> None:
    upstream = Upstream(body=fixture("message_text.json"))

    with pytest.raises(ProviderError) as caught:
        complete(upstream, {**HELLO, "n": 3})

    assert caught.value.kind == "bad_request"
    assert upstream.requests == []


def failure(upstream: Upstream, *, streaming: bool) -> ProviderError:
    """The error a call raised (before any chunk, for a stream)."""
    if streaming:
        chunks, error = stream(upstream)
        assert chunks == []
        assert error is not None
        return error
    with pytest.raises(ProviderError) as caught:
        complete(upstream)
    return caught.value


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(
    ("status", "name", "headers", "kind", "retry_after"),
    [
        (429, "error_rate_limit.json", {"retry-after": "7"}, "rate_limited", 7.0),
        (529, "error_overloaded.json", {}, "overloaded", None),
        (400, "error_invalid_request.json", {}, "bad_request", None),
        (404, "error_not_found.json", {}, "not_found", None),
    ],
)
def test_upstream_error_statuses(
    streaming: bool, status: int, name: str, headers: dict[str, str], kind: str, retry_after: float | None
) -> None:
    error = failure(Upstream(status, fixture(name), headers=headers), streaming=streaming)

    assert error.kind == kind
    assert error.status == status
    assert error.retry_after == retry_after
    assert error.message == orjson.loads(fixture(name))["error"]["message"]


def test_a_streamed_text_answer() -> None:
    upstream = Upstream(stream=Pieces(fixture("stream_text.sse"), size=7))

    chunks, error = stream(upstream)

    assert error is None
    assert upstream.sent["stream"] is True
    assert reassemble(chunks) == ("Hello!", {}, ["stop"])
    assert chunks[-1].usage_only
    assert chunks[-1].usage == Usage(prompt_tokens=25, completion_tokens=15)
    ids = {orjson.loads(chunk.data)["id"] for chunk in chunks}
    assert ids == {"chatcmpl-msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"}


def test_a_streamed_tool_call_reassembles_into_the_same_arguments() -> None:
    upstream = Upstream(stream=Pieces(fixture("stream_tool_use.sse")))

    chunks, error = stream(upstream, {**HELLO, "tools": [WEATHER_TOOL]})

    assert error is None
    text, calls, finishes = reassemble(chunks)
    assert text == "Okay, let's check the weather for San Francisco, CA:"
    assert calls == {
        0: {
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "arguments": '{"location": "San Francisco, CA", "unit": "fahrenheit"}',
        }
    }
    assert finishes == ["tool_calls"]
    assert chunks[-1].usage == Usage(prompt_tokens=472, completion_tokens=89)


def test_an_error_event_mid_stream_raises_after_the_chunks_before_it() -> None:
    chunks, error = stream(Upstream(stream=Pieces(fixture("stream_error.sse"))))

    assert reassemble(chunks) == ("Hello", {}, [])
    assert error is not None
    assert error.kind == "overloaded"


@pytest.mark.parametrize(
    "cut_before", ["event: message_stop", "event: message_delta", "event: content_block_stop"]
)
def test_a_stream_ending_before_message_stop_is_cut(cut_before: str) -> None:
    body = Pieces(fixture("stream_text.sse").split(cut_before.encode())[0])

    chunks, error = stream(Upstream(stream=body))

    assert error is not None
    assert error.kind == "stream_cut"
    assert not any(chunk.usage_only for chunk in chunks)
    assert body.closed


def test_a_malformed_event_is_a_cut_stream() -> None:
    body = fixture("stream_text.sse").replace(b'{"type": "ping"}', b'{"type": "pi')

    chunks, error = stream(Upstream(stream=Pieces(body)))

    assert len(chunks) == 1
    assert error is not None
    assert error.kind == "stream_cut"


def test_a_connection_breaking_mid_stream_is_a_cut_stream() -> None:
    body = Pieces(fixture("stream_text.sse")[:400], then_break=True)

    chunks, error = stream(Upstream(stream=body))

    assert chunks
    assert error is not None
    assert error.kind == "stream_cut"
    assert body.closed


def test_closing_the_stream_early_closes_the_upstream_response() -> None:
    body = Pieces(fixture("stream_tool_use.sse"))

    async def go() -> StreamChunk:
        async with httpx.AsyncClient(transport=httpx.MockTransport(Upstream(stream=body))) as client:
            chunks = AnthropicProvider().stream(HELLO, DEPLOYMENT, client, Timeouts())
            assert isinstance(chunks, AsyncGenerator)
            first: StreamChunk = await anext(chunks)
            assert not body.closed
            await chunks.aclose()
            return first

    first = asyncio.run(go())

    assert orjson.loads(first.data)["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert body.closed
