"""The official `openai` SDK, unchanged, against the running gateway with the simulator behind it."""

from __future__ import annotations

import asyncio
import itertools
import time

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from tests.gateway.api.conftest import Keys, Simulator, chat, drain_usage

pytestmark = pytest.mark.django_db

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]


def test_a_non_streaming_answer_arrives_with_usage_and_headers(client: openai.OpenAI, sim: Simulator) -> None:
    raw = client.chat.completions.with_raw_response.create(model="sim/fast", messages=HELLO)
    completion = raw.parse()

    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0
    assert raw.headers["x-gatehouse-model"] == "sim/fast"
    assert raw.headers["x-gatehouse-cache"] == "miss"
    record = drain_usage()[raw.headers["x-request-id"]]
    assert (record.input_tokens, record.output_tokens) == (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    )
    assert not record.tokens_estimated
    assert record.provider_cost > 0
    assert record.price > record.provider_cost  # the plan's markup


def test_a_stream_with_include_usage_ends_with_the_usage_chunk(client: openai.OpenAI, sim: Simulator) -> None:
    stream = client.chat.completions.create(
        model="sim/fast", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(text.split())


def test_a_stream_without_include_usage_has_no_usage_chunk_but_is_still_metered(
    gateway: str, keys: Keys, sim: Simulator
) -> None:
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=keys.acme, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="sim/fast", messages=HELLO, stream=True)
    chunks: list[ChatCompletionChunk] = list(raw.parse())

    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    record = drain_usage()[raw.headers["x-request-id"]]
    assert record.output_tokens > 0
    assert not record.tokens_estimated  # the provider's own count: we always ask upstream for usage


def test_the_async_client_streams_and_completes(async_client: openai.AsyncOpenAI, sim: Simulator) -> None:
    async def run() -> tuple[str, str]:
        completion = await async_client.chat.completions.create(model="sim/fast", messages=HELLO)
        stream = await async_client.chat.completions.create(
            model="sim/fast", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        await async_client.close()
        return completion.choices[0].message.content or "", "".join(parts)

    whole, streamed = asyncio.run(run())
    assert whole.strip()
    assert streamed.strip()


def test_chunks_arrive_as_the_upstream_sends_them(client: openai.OpenAI, sim: Simulator) -> None:
    sim.set("sim/smart", ttft_ms=0, tokens_per_s=20, output_tokens=10)
    stream = client.chat.completions.create(model="sim/smart", messages=HELLO, stream=True)
    arrivals = [time.monotonic() for c in stream if c.choices and c.choices[0].delta.content]

    assert len(arrivals) == 10
    # 10 tokens at 20/s: ~0.45 s between the first and the last. Buffering would deliver them together.
    assert arrivals[-1] - arrivals[0] > 0.3
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert sum(gap > 0.02 for gap in gaps) >= 7


def test_what_leaves_the_gateway_is_the_clients_request_with_the_upstream_model(
    gateway: str, keys: Keys, sim: Simulator
) -> None:
    body = {
        "model": "sim/echo",
        "messages": HELLO,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["\n\n"],
        "max_tokens": 50,
        "user": "end-user-7",
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
        "metadata": {"team": "search"},
        "seed": 42,
    }
    response = chat(gateway, keys.acme, {**body, "stream": True})
    lines = [line for line in response.text.splitlines() if line.startswith("data: {")]
    text = "".join(
        (orjson.loads(line[6:])["choices"] or [{"delta": {}}])[0]["delta"].get("content") or ""
        for line in lines
    )
    sent = orjson.loads(text)

    assert sent["model"] == "sim/echo"
    assert sent["stream_options"] == {"include_usage": True}  # asked upstream whatever the client said
    for field in (
        "messages",
        "temperature",
        "top_p",
        "stop",
        "max_tokens",
        "user",
        "tools",
        "metadata",
        "seed",
    ):
        assert sent[field] == body[field], field


def test_an_anthropic_model_is_translated_both_ways(client: openai.OpenAI, sim: Simulator) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": "Be brief."}, *HELLO]
    completion = client.chat.completions.create(model="sim-anthropic/fast", messages=messages)
    stream = client.chat.completions.create(
        model="sim-anthropic/fast", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    assert completion.choices[0].message.content
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
