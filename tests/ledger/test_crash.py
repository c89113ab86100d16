"""Leak 3: kill -9 of the web process with streams in flight used to leave 0 of 20 recorded, and their
limiter leases (660 s) locked the tenant out for 11 minutes. Now every stream that delivered output is billed
once from its last checkpoint, flagged `recovered`, and the tenant's slots come back within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import httpx
import orjson
import pytest
import stripe

from config.redis import redis_client
from gateway.metering.liveness import OPEN_PREFIX, PROCESSES
from gateway.tokens import count_text
from tests.conftest import gateway_env
from tests.gateway.api.conftest import Simulator, chat
from tests.ledger.conftest import Ledgerco, assert_reconciles, ledger, ledger_until
from tests.live import ROOT, free_port, process_env, start_web, stop

pytestmark = pytest.mark.processes

STREAMS = 20
CHUNKS_BEFORE_KILL = 16
WAITING = 4  # non-streaming requests still waiting for their upstream when the process dies
HELLO = {"model": "sim/fast", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 20}


@dataclass
class Stream:
    label: str
    pieces: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    def read(self, url: str, key: str) -> None:
        body = {**HELLO, "model": "sim/smart", "max_tokens": 400, "stream": True}
        headers = {"authorization": f"Bearer {key}", "x-client-request-id": self.label}
        try:
            with httpx.stream("POST", url, json=body, headers=headers, timeout=60) as response:
                for line in response.iter_lines():
                    if not line.startswith("data: {"):
                        continue
                    delta = orjson.loads(line[6:])["choices"][0]["delta"]
                    if delta.get("content"):
                        self.pieces.append(delta["content"])
                    if len(self.pieces) >= CHUNKS_BEFORE_KILL:
                        self.ready.set()
        except httpx.HTTPError:
            pass  # the process was killed under us
        finally:
            self.ready.set()


def start_consumer(log: Path) -> subprocess.Popen[bytes]:
    """The real usage consumer (`manage.py consume_usage`): it stores events and reaps dead processes."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "consume_usage", "--consumer", f"ledger-{os.getpid()}"],
            cwd=ROOT,
            env=process_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_killing_the_web_process_mid_stream_bills_every_delivered_stream_once(
    simulator_url: str,
    artifacts_dir: Path,
    gateway: str,
    ledgerco: Ledgerco,
    sim: Simulator,
    set_limits: Any,
    stripe_client: stripe.StripeClient,
) -> None:
    set_limits(concurrency=STREAMS + WAITING)  # the dead process holds every slot the tenant has
    sim.set("sim/smart", ttft_ms=0, tokens_per_s=10, output_tokens=400)
    sim.set("sim/code", ttft_ms=30_000)  # the waiting requests' upstream never answers in time
    port = free_port()
    env = {
        **gateway_env(simulator_url),
        "GATEHOUSE_CHECKPOINT_SECONDS": "0.25",
        "GATEHOUSE_FIRST_BYTE_TIMEOUT": "60",
    }
    web = start_web(port, artifacts_dir / "web-crash.log", **env)
    consumer = start_consumer(artifacts_dir / "consumer-crash.log")
    try:
        url = f"http://localhost:{port}/v1/chat/completions"
        streams = [Stream(f"stream-{i}") for i in range(STREAMS)]
        threads = [threading.Thread(target=s.read, args=(url, ledgerco.key)) for s in streams]
        waiting = [
            threading.Thread(target=_post_quietly, args=(url, ledgerco.key, f"waiting-{i}"))
            for i in range(WAITING)
        ]
        for thread in threads + waiting:
            thread.start()
        for stream in streams:
            assert stream.ready.wait(30)
        assert all(len(s.pieces) >= CHUNKS_BEFORE_KILL for s in streams)

        os.kill(web.pid, signal.SIGKILL)  # no shutdown, no flush: the process is simply gone
        web.wait()
        killed_at = time.monotonic()
        for thread in threads + waiting:
            thread.join(10)

        # The tenant is locked out only until the reaper sees the heartbeat gone (5 s) and settles.
        statuses = [chat(gateway, ledgerco.key, HELLO).status_code]
        assert statuses == [429]  # every slot is held by the dead process's requests
        while statuses[-1] == 429 and time.monotonic() - killed_at < 20:
            time.sleep(0.25)
            statuses.append(chat(gateway, ledgerco.key, HELLO).status_code)
        assert statuses[-1] == 200
        assert time.monotonic() - killed_at < 10
        answered = STREAMS + WAITING + len(statuses)  # each refusal is a row too
        rows = ledger_until(ledgerco, answered, consume=False)  # stored by the consumer process
    finally:
        stop(consumer)
        stop(web)

    assert len(rows) == answered
    recovered = {r.client_request_id: r for r in rows if r.recovered}
    assert len(recovered) == STREAMS + WAITING
    for stream in streams:
        row = recovered[stream.label]
        assert (row.http_status, row.error_class, row.stream) == (200, "process_died", True)
        assert row.tokens_estimated
        delivered = count_text("".join(stream.pieces), "sim/smart")
        at_least = count_text("".join(stream.pieces[: CHUNKS_BEFORE_KILL - 6]), "sim/smart")
        assert at_least <= row.output_tokens <= delivered  # from the last checkpoint, never more than got
        assert row.price > 0
    died_waiting = [r for r in recovered.values() if not r.stream]
    assert len(died_waiting) == WAITING
    assert all((r.http_status, r.output_tokens, r.price) == (500, 0, Decimal(0)) for r in died_waiting)

    client = redis_client()
    assert not [key for key in client.scan_iter(f"{OPEN_PREFIX}*") if client.hlen(key)]
    assert len(ledger(ledgerco)) == len(rows)  # reaping and consuming again changes nothing
    alive = cast("set[str]", client.smembers(PROCESSES))
    assert all(client.exists(f"gh:proc:{name}") for name in alive)  # the dead one has left
    assert_reconciles(ledgerco, stripe_client)


def _post_quietly(url: str, key: str, label: str) -> None:
    headers = {"authorization": f"Bearer {key}", "x-client-request-id": label}
    with suppress(httpx.HTTPError):  # the process was killed under us
        httpx.post(url, json={**HELLO, "model": "sim/code"}, headers=headers, timeout=60)
