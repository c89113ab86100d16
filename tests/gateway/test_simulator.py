"""The provider simulator, over real HTTP: `manage.py simulate_provider` in a child process, driven with
httpx and the official SDKs. Wire shapes, injected faults, pacing and the control endpoint."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from gateway.simulator.answers import prompt_tokens, split_pieces
from gateway.simulator.app import SimulatorApp
from gateway.simulator.asgi import Message
from tests.live import ROOT, free_port, stop, wait_for

JSON = dict[str, Any]
HELLO = [{"role": "user", "content": "Tell me something about gateways."}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


@pytest.fixture(scope="module")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("simulator") / "simulator.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "manage.py",
        "simulate_provider",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def up() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True

    wait_for(up, what="simulator", proc=proc, seconds=30)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.fixture
def sim(sim_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim_url, timeout=10) as client:
        client.post("/_control", json={"reset": True}).raise_for_status()
        yield client


def control(sim: httpx.Client, **settings: Any) -> JSON:
    response = sim.post("/_control", json=settings)
    assert response.status_code == 200, response.text
    data: JSON = response.json()
    return data


def chat(sim: httpx.Client, **body: Any) -> httpx.Response:
    return sim.post("/v1/chat/completions", json={"model": "sim/fast", "messages": HELLO, **body})


def messages(sim: httpx.Client, **body: Any) -> httpx.Response:
    return sim.post("/v1/messages", json={"model": "sim/fast", "max_tokens": 100, "messages": HELLO, **body})


def openai_chunks(sim: httpx.Client, **body: Any) -> list[JSON | str]:
    """The `data:` payloads of a streamed chat completion (`"[DONE]"` kept as a string)."""
    with sim.stream(
        "POST", "/v1/chat/completions", json={"model": "sim/fast", "messages": HELLO, **body}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line.removeprefix("data: ") for line in r.iter_lines() if line.startswith("data: ")]
    return [line if line == "[DONE]" else orjson.loads(line) for line in lines]


def anthropic_events(sim: httpx.Client, **body: Any) -> list[tuple[str, JSON]]:
    payload = {"model": "sim/fast", "max_tokens": 100, "messages": HELLO, "stream": True, **body}
    with sim.stream("POST", "/v1/messages", json=payload) as r:
        assert r.status_code == 200
        lines = [line for line in r.iter_lines() if line]
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    datas = [orjson.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert [d["type"] for d in datas] == names
    return list(zip(names, datas, strict=True))


def test_it_answers_a_chat_completion_in_openai_format(sim: httpx.Client) -> None:
    response = chat(sim)

    assert response.status_code == 200
    assert response.headers["x-gatehouse-simulator"] == "1"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "sim/fast"
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["logprobs"] is None
    assert choice["message"]["role"] == "assistant"
    assert len(choice["message"]["content"].split()) == 16
    assert body["usage"] == {"prompt_tokens": 9, "completion_tokens": 16, "total_tokens": 25}
    assert chat(sim).json()["choices"][0]["message"] == choice["message"], "text is deterministic"


def test_it_streams_chunks_then_usage_then_done(sim: httpx.Client) -> None:
    whole = chat(sim).json()["choices"][0]["message"]["content"]

    chunks = openai_chunks(sim, stream=True, stream_options={"include_usage": True})

    assert chunks[-1] == "[DONE]"
    objects = [c for c in chunks if isinstance(c, dict)]
    assert {c["object"] for c in objects} == {"chat.completion.chunk"}
    assert len({c["id"] for c in objects}) == 1
    assert objects[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [c["choices"][0]["delta"].get("content") for c in objects[1:-2]]
    assert len(deltas) == 16
    assert "".join(d or "" for d in deltas) == whole
    assert objects[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert objects[-1]["choices"] == []
    assert objects[-1]["usage"] == {"prompt_tokens": 9, "completion_tokens": 16, "total_tokens": 25}
    assert all(c["usage"] is None for c in objects[:-1])


def test_it_sends_no_usage_chunk_unless_asked(sim: httpx.Client) -> None:
    chunks = openai_chunks(sim, stream=True)

    assert chunks[-1] == "[DONE]"
    assert all(isinstance(c, dict) and c["choices"] and "usage" not in c for c in chunks[:-1])


@pytest.mark.parametrize("key", ["max_tokens", "max_completion_tokens"])
def test_it_cuts_the_answer_at_max_tokens(sim: httpx.Client, key: str) -> None:
    body = chat(sim, **{key: 5}).json()

    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5
    chunks = openai_chunks(sim, stream=True, **{key: 5})
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if isinstance(c, dict)]
    assert finishes[-1] == "length"


def test_it_answers_n_choices_and_stops_at_stop_sequences(sim: httpx.Client) -> None:
    body = chat(sim, n=3).json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert body["usage"]["completion_tokens"] == 48
    streamed = openai_chunks(sim, stream=True, n=3)
    finished = [
        c["choices"][0]["index"] for c in streamed if isinstance(c, dict) and c["choices"][0]["finish_reason"]
    ]
    assert sorted(finished) == [0, 1, 2]

    text = body["choices"][0]["message"]["content"]
    stop = text.split()[3]
    cut = chat(sim, stop=[stop]).json()["choices"][0]
    assert cut["finish_reason"] == "stop"
    assert cut["message"]["content"] == text[: text.index(stop)]


def test_it_calls_a_tool_when_asked_about_the_weather(sim: httpx.Client) -> None:
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]

    body = chat(sim, messages=ask, tools=[WEATHER_TOOL]).json()
    chunks = openai_chunks(sim, messages=ask, tools=[WEATHER_TOOL], stream=True)

    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_")
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"location": "Paris"}
    deltas = [c["choices"][0]["delta"] for c in chunks if isinstance(c, dict)]
    first = deltas[0]["tool_calls"][0]
    assert first["index"] == 0
    assert first["id"].startswith("call_")
    assert first["function"]["name"] == "get_weather"
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas if "tool_calls" in d)
    assert orjson.loads(arguments) == {"location": "Paris"}
    assert [c["choices"][0]["finish_reason"] for c in chunks if isinstance(c, dict)][-1] == "tool_calls"
    assert "tool_calls" not in chat(sim, tools=[WEATHER_TOOL]).json()["choices"][0]["message"]
    none = chat(sim, messages=ask, tools=[WEATHER_TOOL], tool_choice="none").json()["choices"][0]
    assert none["finish_reason"] == "stop"
    forced = {"type": "function", "function": {"name": "get_weather"}}
    assert (
        chat(sim, tools=[WEATHER_TOOL], tool_choice=forced).json()["choices"][0]["finish_reason"]
        == "tool_calls"
    )


def test_it_answers_anthropic_messages(sim: httpx.Client) -> None:
    response = messages(sim, max_tokens=4)

    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("msg_")
    assert (body["type"], body["role"], body["model"]) == ("message", "assistant", "sim/fast")
    [block] = body["content"]
    assert block["type"] == "text"
    assert len(block["text"].split()) == 4
    assert (body["stop_reason"], body["stop_sequence"]) == ("max_tokens", None)
    assert body["usage"] == {"input_tokens": 9, "output_tokens": 4}
    assert messages(sim).json()["stop_reason"] == "end_turn"


def test_it_streams_anthropic_events_in_the_documented_order(sim: httpx.Client) -> None:
    whole = messages(sim).json()["content"][0]["text"]

    events = anthropic_events(sim)

    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[3:-3] == ["content_block_delta"] * 16
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["content"] == []
    assert start["stop_reason"] is None
    assert start["usage"]["input_tokens"] == 9
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert "".join(data["delta"]["text"] for _, data in events[3:-3]) == whole
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2][1]["usage"] == {"output_tokens": 16}


def test_it_uses_anthropic_tools(sim: httpx.Client) -> None:
    tool = {"name": "get_weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}  # type: ignore[index]
    ask = [{"role": "user", "content": "weather in Paris?"}]

    body = messages(sim, messages=ask, tools=[tool]).json()
    events = anthropic_events(sim, messages=ask, tools=[tool])

    assert body["stop_reason"] == "tool_use"
    [block] = body["content"]
    assert block["type"] == "tool_use"
    assert block["id"].startswith("toolu_")
    assert (block["name"], block["input"]) == ("get_weather", {"location": "Paris"})
    assert events[1][1]["content_block"]["type"] == "tool_use"
    partial = "".join(d["delta"]["partial_json"] for name, d in events if name == "content_block_delta")
    assert orjson.loads(partial) == {"location": "Paris"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_it_refuses_bad_requests_in_each_providers_format(sim: httpx.Client) -> None:
    bad_json = sim.post("/v1/chat/completions", content=b"{nope")
    no_messages = sim.post("/v1/chat/completions", json={"model": "sim/fast"})
    no_max_tokens = sim.post("/v1/messages", json={"model": "sim/fast", "messages": HELLO})
    unknown = sim.post("/v1/embeddings", json={})

    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["type"] == "invalid_request_error"
    assert set(bad_json.json()["error"]) == {"message", "type", "param", "code"}
    assert no_messages.status_code == 400
    assert no_messages.json()["error"]["param"] == "messages"
    assert no_max_tokens.status_code == 400
    assert no_max_tokens.json()["type"] == "error"
    assert no_max_tokens.json()["error"]["type"] == "invalid_request_error"
    assert unknown.status_code == 404


def test_sim_echo_answers_with_the_exact_request_body(sim: httpx.Client) -> None:
    raw = (
        '{"model": "sim/echo", "max_tokens": 2,  "messages": [{"role": "user", "content": "café"}]}'.encode()
    )
    streamed = raw.replace(b'"max_tokens"', b'"stream": true, "max_tokens"')

    chat_text = sim.post("/v1/chat/completions", content=raw).json()["choices"][0]["message"]["content"]
    anthropic_text = sim.post("/v1/messages", content=raw).json()["content"][0]["text"]
    with sim.stream("POST", "/v1/chat/completions", content=streamed) as r:
        chunks = [orjson.loads(x[6:]) for x in r.iter_lines() if x.startswith("data: {")]

    assert chat_text == raw.decode() == anthropic_text
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == streamed.decode()


def test_it_lists_the_catalogue(sim: httpx.Client) -> None:
    body = sim.get("/v1/models").json()

    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["sim/fast", "sim/smart", "sim/code", "sim/vision", "sim/echo"]
    assert {m["object"] for m in body["data"]} == {"model"}


def test_an_outage_answers_503_at_once(sim: httpx.Client) -> None:
    control(sim, model="sim/fast", outage=True)

    response = chat(sim)

    assert response.status_code == 503
    assert response.json()["error"]["type"] == "server_error"
    assert messages(sim).json()["error"]["type"] == "overloaded_error"
    assert chat(sim, model="sim/smart").status_code == 200, "other models are unaffected"


def test_error_rate_answers_500_with_an_error_body(sim: httpx.Client) -> None:
    control(sim, model="sim/smart", error_rate=1)

    response = chat(sim, model="sim/smart")
    anthropic = messages(sim, model="sim/smart")

    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    assert anthropic.status_code == 500
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "api_error"


def test_rate_429_answers_with_retry_after(sim: httpx.Client) -> None:
    control(sim, model="*", rate_429=1)

    default = chat(sim, model="any-model-name")
    control(sim, model="sim/fast", retry_after_s=0.2)
    short = chat(sim)

    assert default.status_code == 429
    assert default.headers["retry-after"] == "1"
    assert default.json()["error"]["code"] == "rate_limit_exceeded"
    assert (short.headers["retry-after"], short.headers["retry-after-ms"]) == ("1", "200")
    assert messages(sim).json()["error"]["type"] == "rate_limit_error"


def test_the_seed_makes_injected_faults_repeatable(sim: httpx.Client) -> None:
    control(sim, model="sim/fast", error_rate=0.5)

    def statuses() -> list[int]:
        control(sim, seed=123)
        return [chat(sim, max_tokens=1).status_code for _ in range(12)]

    first = statuses()
    assert first == statuses()
    assert {200, 500} == set(first)


def test_cut_after_chunks_drops_the_stream_without_finish_or_done(sim: httpx.Client) -> None:
    control(sim, model="sim/fast", cut_after_chunks=3)
    body = {"model": "sim/fast", "messages": HELLO, "stream": True}
    lines: list[str] = []

    with pytest.raises(httpx.RemoteProtocolError), sim.stream("POST", "/v1/chat/completions", json=body) as r:
        lines.extend(line for line in r.iter_lines() if line)

    chunks = [orjson.loads(line[6:]) for line in lines]
    assert len(chunks) == 4, "the role chunk and three content chunks"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert "data: [DONE]" not in lines
    payload = {"model": "sim/fast", "max_tokens": 50, "messages": HELLO, "stream": True}
    events: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError), sim.stream("POST", "/v1/messages", json=payload) as r:
        events.extend(line for line in r.iter_lines() if line.startswith("event: "))
    assert events[-1] == "event: content_block_delta"
    assert events.count("event: content_block_delta") == 3


def test_tokens_are_paced_at_tokens_per_s(sim: httpx.Client) -> None:
    control(sim, model="sim/code", ttft_ms=0, tokens_per_s=50, output_tokens=10)
    arrivals: list[float] = []

    begun = time.monotonic()
    body = {"model": "sim/code", "messages": HELLO, "stream": True}
    with sim.stream("POST", "/v1/chat/completions", json=body) as r:
        arrivals.extend(
            time.monotonic() for line in r.iter_lines() if '"content":"' in line and '"role"' not in line
        )
    whole_started = time.monotonic()
    chat(sim, model="sim/code")
    whole = time.monotonic() - whole_started

    assert len(arrivals) == 10
    assert arrivals[-1] - begun >= 0.15
    assert arrivals[-1] - arrivals[4] >= 0.06, "chunks are spread over time, not sent at once"
    assert whole >= 0.15


def test_ttft_delays_the_answer(sim: httpx.Client) -> None:
    control(sim, model="sim/vision", ttft_ms=200)

    started = time.monotonic()
    assert chat(sim, model="sim/vision").status_code == 200
    assert time.monotonic() - started >= 0.18


def test_a_hanging_model_never_answers(sim: httpx.Client) -> None:
    control(sim, model="sim/fast", hang=True)

    with pytest.raises(httpx.ReadTimeout):
        sim.post("/v1/chat/completions", json={"model": "sim/fast", "messages": HELLO}, timeout=0.3)
    assert chat(sim, model="sim/smart").status_code == 200


def test_control_shows_resets_and_validates_settings(sim: httpx.Client) -> None:
    state = control(sim, model="*", ttft_ms=0, tokens_per_s=None)
    assert state["models"]["sim/smart"]["ttft_ms"] == 0
    assert state["other_models"]["tokens_per_s"] is None

    control(sim, reset=True)
    shown = sim.get("/_control").json()

    assert shown["models"]["sim/fast"] == {
        "ttft_ms": 5,
        "tokens_per_s": 2000,
        "error_rate": 0,
        "rate_429": 0,
        "retry_after_s": 1,
        "outage": False,
        "cut_after_chunks": None,
        "hang": False,
        "output_tokens": 16,
    }
    assert shown["models"]["sim/smart"]["ttft_ms"] == 30
    bad = [
        {"model": "sim/fast", "speed": 3},
        {"model": "sim/fast", "error_rate": 2},
        {"model": "sim/fast", "outage": "yes"},
        {"model": "sim/fast", "cut_after_chunks": 1.5},
        {"ttft_ms": 10},
        {"model": "sim/fast"},
        [],
    ]
    for payload in bad:
        response = sim.post("/_control", json=payload)
        assert response.status_code == 400, payload
        assert response.json()["error"]["message"]
    assert sim.post("/_control", content=b"{").status_code == 400
    assert sim.get("/_control").json() == shown, "refused requests change nothing"


def test_the_openai_sdk_reads_answers_streams_and_errors(sim_url: str, sim: httpx.Client) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{sim_url}/v1", api_key="sk-sim", max_retries=0)

    completion = client.chat.completions.create(model="sim/smart", messages=HELLO)
    stream = client.chat.completions.create(
        model="sim/smart", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 32
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == completion.choices[0].message.content
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == completion.usage.total_tokens
    control(sim, model="sim/smart", rate_429=1, retry_after_s=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="sim/smart", messages=HELLO)


def test_the_anthropic_sdk_reads_messages_and_streams(sim_url: str, sim: httpx.Client) -> None:
    anthropic = pytest.importorskip("anthropic")
    client = anthropic.Anthropic(base_url=sim_url, api_key="sk-ant-sim", max_retries=0)

    message = client.messages.create(model="sim/code", max_tokens=100, messages=HELLO)
    with client.messages.stream(model="sim/code", max_tokens=100, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert message.stop_reason == "end_turn"
    assert text == message.content[0].text
    assert final.usage.output_tokens == 24
    control(sim, model="sim/code", outage=True)
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model="sim/code", max_tokens=10, messages=HELLO)


def test_it_stops_generating_when_the_client_leaves() -> None:
    app = SimulatorApp()
    app.control.apply({"model": "sim/fast", "tokens_per_s": 100, "output_tokens": 10_000})
    body = orjson.dumps({"model": "sim/fast", "messages": HELLO, "stream": True})
    sent: list[Message] = []

    async def run() -> None:
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> Message:
            if messages:
                return messages.pop()
            await asyncio.sleep(0.1)
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions"}
        await asyncio.wait_for(app(scope, receive, send), timeout=5)

    asyncio.run(run())

    assert 2 < len(sent) < 100
    assert sent[-1]["more_body"] is True, "the response is left unfinished"


def test_tokens_and_pieces() -> None:
    text = "  one two\nthree  "

    assert "".join(split_pieces(text)) == text
    assert split_pieces("   ") == ("   ",)
    assert split_pieces("") == ()
    assert prompt_tokens("") == 1
    assert prompt_tokens("x" * 9) == 3
