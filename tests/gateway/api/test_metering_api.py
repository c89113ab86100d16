"""Usage metering through the real gateway: failed requests, client disconnects, and a web process killed
right after answering. Usage is money: never lost, never counted twice."""

from __future__ import annotations

import os
import signal
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.conftest import gateway_env
from tests.gateway.api.conftest import Keys, Simulator, by_label, chat, drain_usage
from tests.live import free_port, start_web

pytestmark = pytest.mark.django_db

OK = {"model": "sim/fast", "messages": [{"role": "user", "content": "Say hello"}]}


def test_a_request_that_fails_validation_is_metered_too(gateway: str, keys: Keys) -> None:
    response = chat(gateway, keys.acme, {**OK, "temperature": 9})

    record = drain_usage()[response.headers["x-request-id"]]
    assert (record.http_status, record.output_tokens, record.price) == (400, 0, Decimal(0))
    assert record.requested_model == "sim/fast"


def test_the_clients_request_id_is_a_label_echoed_and_stored_beside_the_gateways_own(
    gateway: str, keys: Keys, sim: Simulator
) -> None:
    label = f"client-{uuid.uuid4().hex}"

    response = chat(gateway, keys.acme, OK, **{"x-request-id": label})

    ours = response.headers["x-request-id"]
    assert ours.startswith("req_")
    assert ours != label
    assert response.headers["x-client-request-id"] == label
    record = drain_usage()[ours]
    assert record.client_request_id == label


def test_usage_lands_only_in_the_callers_schema(gateway: str, keys: Keys, sim: Simulator) -> None:
    acme = chat(gateway, keys.acme, OK).headers["x-request-id"]
    globex = chat(gateway, keys.globex, OK).headers["x-request-id"]

    acme_records, globex_records = drain_usage("t_acme"), drain_usage("t_globex")
    assert acme in acme_records
    assert acme not in globex_records
    assert globex in globex_records
    assert globex not in acme_records


def test_a_client_that_disconnects_mid_stream_is_metered_for_what_it_got(
    gateway: str, keys: Keys, sim: Simulator
) -> None:
    sim.set("sim/smart", ttft_ms=0, tokens_per_s=20, output_tokens=60)
    request_id = f"gone-{uuid.uuid4().hex}"
    body = {**OK, "model": "sim/smart", "stream": True}
    headers = {"authorization": f"Bearer {keys.acme}", "x-client-request-id": request_id}
    with httpx.stream("POST", f"{gateway}/v1/chat/completions", json=body, headers=headers) as response:
        seen = 0
        for line in response.iter_lines():
            seen += '"content":"' in line
            if seen >= 4:
                break  # leaving the block closes the connection mid-stream

    record = by_label(request_id)
    assert record.client_disconnected
    assert record.tokens_estimated
    assert 3 <= record.output_tokens < 40  # what was delivered, not the 60 the upstream would have sent
    assert record.price > 0


def test_killing_the_web_process_right_after_its_answers_loses_no_usage(
    simulator_url: str,
    artifacts_dir: Path,
    keys: Keys,
    sim: Simulator,
) -> None:
    port = free_port()
    proc = start_web(port, artifacts_dir / "web-killed.log", **gateway_env(simulator_url))
    url = f"http://localhost:{port}"
    answered = []
    for i in range(20):
        body = {**OK, "stream": i % 2 == 1}
        response = chat(url, keys.acme, body)
        assert response.status_code == 200
        answered.append(response.headers["x-request-id"])
    os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no flush: the process is simply gone
    proc.wait()

    first = drain_usage()
    second = drain_usage()  # running the consumer again changes nothing

    assert all(request_id in first for request_id in answered)
    assert sum(1 for r in second.values() if r.request_id in answered) == len(answered)


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_before_any_byte_is_still_metered_once(
    gateway: str, keys: Keys, sim: Simulator, stream: bool
) -> None:
    sim.set("sim/smart", ttft_ms=400)  # under the test gateway's 0.5 s first-byte timeout
    request_id = f"early-{uuid.uuid4().hex}"
    headers = {"authorization": f"Bearer {keys.acme}", "x-client-request-id": request_id}
    with pytest.raises(httpx.TimeoutException):
        httpx.post(
            f"{gateway}/v1/chat/completions",
            json={**OK, "model": "sim/smart", "stream": stream},
            headers=headers,
            timeout=0.1,
        )

    record = by_label(request_id)
    assert (record.http_status, record.client_disconnected, record.output_tokens) == (499, True, 0)
