"""Retries, fallback along the chain, and the circuit breaker shared by every web process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from config.redis import redis_client
from tests.conftest import gateway_env
from tests.gateway.api.conftest import HELLO_BODY, Keys, Simulator, chat, drain_usage
from tests.live import free_port, start_web, stop

pytestmark = pytest.mark.django_db

AUTO = {
    "model": "auto",
    "messages": [{"role": "user", "content": "Say hello"}],
}  # simple: sim/fast > sim/smart


def attempts_of(request_id: str) -> list[tuple[str, str]]:
    record = drain_usage()[request_id]
    return [(a["model"], a["error"]) for a in record.attempts]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"outage": True}, "server"),
        ({"rate_429": 1, "retry_after_s": 0}, "rate_limited"),
        ({"hang": True}, "timeout"),
        ({"error_rate": 1}, "server"),
    ],
)
def test_a_failing_primary_is_retried_then_the_next_model_serves(
    gateway: str, keys: Keys, sim: Simulator, fault: dict[str, object], error: str
) -> None:
    sim.set("sim/fast", **fault)

    response = chat(gateway, keys.acme, AUTO)

    assert response.status_code == 200, response.text
    assert response.headers["x-gatehouse-model"] == "sim/smart"
    assert attempts_of(response.headers["x-request-id"]) == [
        ("sim/fast", error),
        ("sim/fast", error),
        ("sim/fast", error),
        ("sim/smart", ""),
    ]
    record = drain_usage()[response.headers["x-request-id"]]
    assert (record.served_model, record.fallback_count, record.task_type) == ("sim/smart", 1, "simple")


def test_a_stream_falls_over_before_its_first_byte(gateway: str, keys: Keys, sim: Simulator) -> None:
    sim.set("sim/fast", outage=True)
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=keys.acme, max_retries=0)

    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=HELLO_BODY, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw.parse())

    assert raw.headers["x-gatehouse-model"] == "sim/smart"
    assert chunks[-1].usage is not None
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_a_stream_cut_short_ends_with_an_error_event_and_is_metered(
    gateway: str, keys: Keys, sim: Simulator
) -> None:
    sim.set("sim/fast", cut_after_chunks=3, output_tokens=20)

    response = chat(gateway, keys.acme, {**AUTO, "model": "sim/fast", "stream": True})

    events = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert "data: [DONE]" not in events
    assert '"error"' in events[-1]
    assert "upstream_stream_error" in events[-1]
    record = drain_usage()[response.headers["x-request-id"]]
    assert record.error_class == "stream_stream_cut"
    assert record.tokens_estimated
    assert 0 < record.output_tokens < 20
    assert record.price > 0  # what was delivered is billed


def test_the_sdk_raises_on_a_stream_cut_short(gateway: str, keys: Keys, sim: Simulator) -> None:
    sim.set("sim/fast", cut_after_chunks=2, output_tokens=20)
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=keys.acme, max_retries=0)

    stream = client.chat.completions.create(model="sim/fast", messages=HELLO_BODY, stream=True)
    with pytest.raises(openai.APIError):
        list(stream)


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"outage": True}, 502, "upstream_error"),
        ({"hang": True}, 504, "upstream_timeout"),
        ({"rate_429": 1, "retry_after_s": 0}, 503, "upstream_unavailable"),
    ],
)
def test_when_every_model_fails_the_client_gets_a_clear_5xx(
    gateway: str, keys: Keys, sim: Simulator, fault: dict[str, object], status: int, code: str
) -> None:
    sim.set("sim/fast", **fault)

    response = chat(gateway, keys.acme, {**AUTO, "model": "sim/fast"})

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert "sim/fast" in response.json()["error"]["message"]
    assert drain_usage()[response.headers["x-request-id"]].http_status == status


def open_circuit(gateway: str, keys: Keys, sim: Simulator) -> None:
    """Two requests with sim/fast down: six failures, over the threshold of five."""
    sim.set("sim/fast", outage=True)
    for _ in range(2):
        assert chat(gateway, keys.acme, AUTO).status_code == 200
    assert redis_client().hget("gh:cb:sim/fast", "state") == "open"


def test_the_circuit_opens_after_the_threshold_and_half_opens_later(
    gateway: str, keys: Keys, sim: Simulator
) -> None:
    open_circuit(gateway, keys, sim)

    skipped = chat(gateway, keys.acme, AUTO)
    assert attempts_of(skipped.headers["x-request-id"]) == [("sim/smart", "")]

    sim.set("sim/fast", outage=False)
    time.sleep(1.2)  # GATEHOUSE_CIRCUIT_OPEN_SECONDS=1 in the test gateway
    probe = chat(gateway, keys.acme, AUTO)
    assert probe.headers["x-gatehouse-model"] == "sim/fast"
    assert not redis_client().exists("gh:cb:sim/fast")  # closed again


def test_a_failed_probe_opens_the_circuit_again(gateway: str, keys: Keys, sim: Simulator) -> None:
    open_circuit(gateway, keys, sim)
    time.sleep(1.2)

    probe = chat(gateway, keys.acme, AUTO)

    assert attempts_of(probe.headers["x-request-id"])[0] == ("sim/fast", "server")
    assert redis_client().hget("gh:cb:sim/fast", "state") == "open"


@pytest.fixture
def second_gateway(simulator_url: str, artifacts_dir: Path, keys: Keys) -> Iterator[str]:
    port = free_port()
    proc = start_web(port, artifacts_dir / "web-2.log", **gateway_env(simulator_url))
    yield f"http://localhost:{port}"
    stop(proc)


def test_circuit_state_is_shared_between_web_processes(
    gateway: str, second_gateway: str, keys: Keys, sim: Simulator
) -> None:
    open_circuit(gateway, keys, sim)

    response = chat(second_gateway, keys.acme, AUTO)

    assert response.headers["x-gatehouse-model"] == "sim/smart"
    assert attempts_of(response.headers["x-request-id"]) == [("sim/smart", "")]


def test_all_circuits_open_is_a_503_with_retry_after(gateway: str, keys: Keys, sim: Simulator) -> None:
    open_circuit(gateway, keys, sim)

    response = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={**AUTO, "model": "sim/fast"},
        headers={"authorization": f"Bearer {keys.acme}"},
    )

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "upstream_unavailable"
