"""Usage metering: emit (Redis Stream, or the local spool if Redis fails) -> consumer -> RequestRecord in
the tenant's schema, exactly once, even if the web process or the consumer is SIGKILLed at a bad moment."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol, cast

import orjson
import pytest
from django.forms.models import model_to_dict
from django.test import override_settings
from django_tenants.utils import schema_context
from pytest_django import DjangoDbBlocker, Settings

from config.redis import redis_client
from gateway.metering import consumer
from gateway.metering.consumer import (
    GROUP,
    ConsumerOptions,
    usage_consume_batch,
    usage_consume_forever,
    usage_consume_once,
    usage_drain_spool,
    usage_group_ensure,
)
from gateway.metering.dead_letters import DEAD_STREAM
from gateway.metering.emit import (
    USAGE_STREAM,
    usage_emit,
    usage_emit_sync,
    usage_event_payload,
    usage_spool_append,
)
from gateway.metering.events import UsageEvent
from gateway.metering.store import usage_store
from gateway.metering.tasks import usage_consume_pending
from gateway.models import RequestRecord
from tenants.models import Tenant
from tests.conftest import World
from tests.gateway.metering_crash import make_event
from tests.live import ROOT, free_port, process_env, wait_for


@pytest.fixture(autouse=True)
def _spool_in_tmp(settings: Settings, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path  # never drain (or write) the dev spool


def _event(tenant: Tenant, request_id: str, **overrides: object) -> UsageEvent:
    return make_event(request_id, schema=tenant.schema_name, tenant_id=tenant.pk, **overrides)


def _request_ids(schema: str, prefix: str) -> list[str]:
    with schema_context(schema):
        return list(
            RequestRecord.objects.filter(request_id__startswith=prefix).values_list("request_id", flat=True)
        )


def _dead_letters() -> list[dict[str, str]]:
    entries = cast("list[tuple[str, dict[str, str]]]", redis_client().xrange(DEAD_STREAM))
    return [fields for _id, fields in entries]


def _settled() -> bool:
    """Nothing left in the stream, nothing pending in the group."""
    client = redis_client()
    return client.xlen(USAGE_STREAM) == 0 and client.xpending(USAGE_STREAM, GROUP)["pending"] == 0


@pytest.mark.django_db
def test_an_emitted_event_is_stored_in_its_tenant_schema_with_every_field(
    acme: Tenant, globex: Tenant
) -> None:
    asyncio.run(usage_emit(_event(acme, "req-every-field")))
    client = redis_client()
    usage_group_ensure(client)

    assert usage_consume_batch(client, "c1", block_ms=None) == 1

    with schema_context(acme.schema_name):
        record = RequestRecord.objects.get(request_id="req-every-field")
    assert record.created_at == datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert model_to_dict(record, exclude=["id", "created_at", "recorded_at"]) == {
        "request_id": "req-every-field",
        "api_key_prefix": "abcd1234efgh",
        "requested_model": "auto",
        "served_model": "sim/smart",
        "provider": "simulator",
        "task_type": "reasoning",
        "attempts": [
            {
                "model": "sim/fast",
                "provider": "simulator",
                "status": 429,
                "error": "rate_limited",
                "latency_ms": 12,
            },
            {"model": "sim/smart", "provider": "simulator", "status": 200, "error": "", "latency_ms": 800},
        ],
        "fallback_count": 1,
        "input_tokens": 1200,
        "output_tokens": 345,
        "tokens_estimated": True,
        "provider_cost": Decimal("0.00123456"),
        "price": Decimal("0.00234567"),
        "unit_input_price": Decimal("0.24"),
        "unit_output_price": Decimal("0.96"),
        "unit_request_price": Decimal("0.00012"),
        "latency_ms": 812,
        "ttft_ms": 95,
        "cache_status": "hit-semantic",
        "http_status": 200,
        "error_class": "",
        "stream": True,
        "client_disconnected": True,
        "cache_similarity": 0.9375,
        "pii_counts": {"email": 2, "card": 1},
        "cache_saving": Decimal("0.00111111"),
        "client_request_id": "trace-4f2a",
        "recovered": False,
    }
    assert _request_ids(globex.schema_name, "req-") == []
    assert _settled()


def test_an_event_written_before_prices_per_request_were_kept_reads_as_zero_per_request() -> None:
    data = make_event("req-old", schema="t_acme", tenant_id=1).to_json_dict()
    del data["unit_request_price"]  # as a web process of the previous release wrote it

    old = UsageEvent.from_json_dict(data)

    assert old.unit_request_price == Decimal(0)
    assert (old.unit_input_price, old.price) == (Decimal("0.24"), Decimal("0.00234567"))


@pytest.mark.django_db
def test_the_same_event_emitted_twice_is_stored_once(acme: Tenant) -> None:
    event = _event(acme, "req-twice")
    asyncio.run(usage_emit(event))
    usage_emit_sync(event)  # e.g. a retry after a timeout that Redis had applied anyway
    client = redis_client()
    usage_group_ensure(client)

    assert usage_consume_batch(client, "c1", block_ms=None) == 2

    assert _request_ids(acme.schema_name, "req-") == ["req-twice"]
    assert usage_store([event, _event(acme, "req-other")]) == 1
    assert usage_store([event, _event(acme, "req-other")]) == 0
    assert _settled()
    assert _dead_letters() == []


def _until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.django_db
def test_the_consumer_lingers_after_a_small_batch_so_that_a_trickle_is_stored_in_one_batch(
    acme: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []

    def store(entries: list[object]) -> list[object]:
        batches.append(len(entries))
        return []

    monkeypatch.setattr(consumer, "_store_entries", store)
    client = redis_client()
    usage_group_ensure(client)
    usage_emit_sync(_event(acme, "req-first"))
    stop = threading.Event()
    options = ConsumerOptions(block_ms=100, linger_s=0.5)
    thread = threading.Thread(target=usage_consume_forever, args=(client, "c1", stop, options))
    thread.start()
    try:
        _until(lambda: batches == [1])
        # Five separate XADDs: each would wake a consumer blocked in XREADGROUP.
        for number in range(5):
            usage_emit_sync(_event(acme, f"req-trickle-{number}"))
        _until(lambda: len(batches) == 2)
    finally:
        stop.set()
        thread.join(timeout=5)

    assert batches == [1, 5]
    assert _settled()


@pytest.mark.django_db
def test_events_of_deleted_tenants_are_skipped_without_blocking_the_batch(
    acme: Tenant, globex: Tenant
) -> None:
    usage_emit_sync(make_event("req-gone", schema="t_gone", tenant_id=999_999))
    # The schema name now belongs to a tenant with another id (deleted, then re-created with the same slug).
    usage_emit_sync(make_event("req-stale", schema=acme.schema_name, tenant_id=globex.pk))
    usage_emit_sync(make_event("req-public", schema="public", tenant_id=acme.pk))
    usage_emit_sync(_event(acme, "req-good"))
    client = redis_client()
    usage_group_ensure(client)

    assert usage_consume_batch(client, "c1", block_ms=None) == 4

    assert _request_ids(acme.schema_name, "req-") == ["req-good"]
    assert _request_ids(globex.schema_name, "req-") == []
    assert _settled()


@pytest.mark.django_db
def test_only_entries_that_cannot_be_parsed_go_to_the_dead_letter_stream(acme: Tenant) -> None:
    client = redis_client()
    usage_group_ensure(client)
    odd = {**_event(acme, "req-odd").to_json_dict(), "input_tokens": "12", "output_tokens": -5}
    client.xadd(USAGE_STREAM, {"event": "not json"})
    client.xadd(USAGE_STREAM, {"something": "else"})
    client.xadd(USAGE_STREAM, {"event": orjson.dumps({"request_id": "req-half"})})
    client.xadd(USAGE_STREAM, {"event": orjson.dumps([1, 2])})
    client.xadd(USAGE_STREAM, {"event": orjson.dumps(odd)})
    client.xadd(USAGE_STREAM, {"event": usage_event_payload(_event(acme, "req-good"))})

    assert usage_consume_batch(client, "c1", block_ms=None) == 6

    assert sorted(_request_ids(acme.schema_name, "req-")) == ["req-good", "req-odd"]
    with schema_context(acme.schema_name):
        stored = RequestRecord.objects.get(request_id="req-odd")
    assert (stored.input_tokens, stored.output_tokens) == (0, 0)  # bounded, not refused
    dead = _dead_letters()
    assert [fields["reason"].split(":")[0] for fields in dead] == ["malformed"] * 4
    assert orjson.loads(dead[0]["fields"]) == {"event": "not json"}
    assert redis_client().get("gh:usage:dead:total") == "4"
    assert _settled()


@pytest.mark.django_db
def test_an_event_spooled_while_redis_is_down_is_drained_into_exactly_one_row(
    acme: Tenant, tmp_path: Path
) -> None:
    event = _event(acme, "req-spooled-1")
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        asyncio.run(usage_emit(event))
        usage_emit_sync(_event(acme, "req-spooled-2"))
    (spool,) = (tmp_path / "usage-spool").glob("*.jsonl")
    assert len(spool.read_bytes().splitlines()) == 2
    client = redis_client()
    asyncio.run(usage_emit(event))  # Redis is back; the same event also reaches the stream (a retry)
    usage_group_ensure(client)

    assert usage_drain_spool(client) == 2
    assert usage_consume_batch(client, "c1", block_ms=None) == 1
    assert usage_drain_spool(client) == 0

    assert sorted(_request_ids(acme.schema_name, "req-")) == ["req-spooled-1", "req-spooled-2"]
    assert list((tmp_path / "usage-spool").iterdir()) == []


@pytest.mark.django_db
def test_emit_spools_within_a_second_when_redis_does_not_answer(acme: Tenant, tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with override_settings(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0"):
            started = time.monotonic()
            asyncio.run(usage_emit(_event(acme, "req-silent")))
            elapsed = time.monotonic() - started

    assert elapsed < 1.0
    (spool,) = (tmp_path / "usage-spool").glob("*.jsonl")
    assert b"req-silent" in spool.read_bytes()


@pytest.mark.django_db
def test_a_drain_interrupted_by_a_crash_is_redone_without_duplicates(acme: Tenant, tmp_path: Path) -> None:
    spool_dir = tmp_path / "usage-spool"
    spool_dir.mkdir()
    first = usage_event_payload(_event(acme, "req-drain-1"))
    second = usage_event_payload(_event(acme, "req-drain-2"))
    # A writer that died mid-write leaves a torn last line (its emit never returned).
    (spool_dir / "web-1.jsonl").write_bytes(first + b"\n" + second[:40])
    # A drainer that died after storing, before deleting, leaves its renamed file.
    (spool_dir / "web-2.0123abcd.draining").write_bytes(first + b"\n" + second + b"\n")
    client = redis_client()

    assert usage_drain_spool(client) == 4

    assert sorted(_request_ids(acme.schema_name, "req-")) == ["req-drain-1", "req-drain-2"]
    assert [fields["reason"].split(":")[0] for fields in _dead_letters()] == ["malformed"]
    assert list(spool_dir.iterdir()) == []


@pytest.mark.django_db
def test_draining_while_a_process_is_spooling_loses_no_line(acme: Tenant, tmp_path: Path) -> None:
    count = 150
    writer = threading.Thread(
        target=lambda: [
            usage_spool_append(usage_event_payload(_event(acme, f"req-race-{n}"))) for n in range(count)
        ]
    )
    client = redis_client()
    writer.start()
    while writer.is_alive():
        usage_drain_spool(client)
    writer.join()
    usage_drain_spool(client)

    assert len(set(_request_ids(acme.schema_name, "req-race-"))) == count
    assert list((tmp_path / "usage-spool").iterdir()) == []


@pytest.mark.django_db
def test_the_safety_net_task_stores_the_stream_and_the_spool(acme: Tenant) -> None:
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"):
        usage_emit_sync(_event(acme, "req-net-spooled"))
    usage_emit_sync(_event(acme, "req-net-streamed"))

    assert usage_consume_pending() == 2

    assert sorted(_request_ids(acme.schema_name, "req-net-")) == ["req-net-spooled", "req-net-streamed"]
    assert _settled()


@pytest.fixture
def committed(world: World, django_db_blocker: DjangoDbBlocker) -> Iterator[str]:
    """A request-id prefix; rows under it are committed (child processes write them) and deleted after."""
    prefix = f"crash-{time.time_ns()}"
    with django_db_blocker.unblock():
        yield prefix
        with schema_context(world.acme.schema_name):
            RequestRecord.objects.filter(request_id__startswith=prefix).delete()


class Spawn(Protocol):
    def __call__(
        self, args: list[str], log: Path, *, pipe: bool = False, **env: str
    ) -> subprocess.Popen[bytes]: ...


@pytest.fixture
def spawn(tmp_path: Path, artifacts_dir: Path) -> Iterator[Spawn]:
    """Starts `python ARGS` on the test database and this test's spool; kills what still runs at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], log: Path, *, pipe: bool = False, **env: str) -> subprocess.Popen[bytes]:
        with (artifacts_dir / log).open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, *args],
                cwd=ROOT,
                env=process_env(GATEHOUSE_DATA_DIR=str(tmp_path), **env),
                stdout=subprocess.PIPE if pipe else out,
                stderr=out if pipe else subprocess.STDOUT,
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _stored(schema: str, prefix: str, count: int) -> Callable[[], bool]:
    return lambda: len(_request_ids(schema, prefix)) == count


@pytest.mark.parametrize("redis_up", [True, False], ids=["redis-up", "redis-down"])
def test_events_emitted_before_the_web_process_is_killed_are_stored_exactly_once(
    redis_up: bool, world: World, committed: str, tmp_path: Path, spawn: Spawn
) -> None:
    count, acme = 200, world.acme
    env = {} if redis_up else {"GATEHOUSE_TEST_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    args = ["--schema", acme.schema_name, "--tenant-id", str(acme.pk), "--prefix", committed]
    web = spawn(
        ["-m", "tests.gateway.metering_crash", *args, "--count", str(count)],
        Path("metering-web.log"),
        pipe=True,
        **env,
    )
    assert web.stdout is not None
    line = web.stdout.readline()
    web.send_signal(signal.SIGKILL)  # right after the last response
    web.wait()
    assert line == b"responded\n"
    assert bool(list((tmp_path / "usage-spool").glob("*.jsonl"))) is not redis_up

    assert usage_consume_once(redis_client(), "survivor") == count

    request_ids = _request_ids(acme.schema_name, committed)
    assert len(request_ids) == len(set(request_ids)) == count
    assert _settled()
    assert _dead_letters() == []


def test_a_consumer_killed_between_commit_and_ack_loses_and_duplicates_nothing(
    world: World, committed: str, spawn: Spawn
) -> None:
    count, batch, schema = 250, 100, world.acme.schema_name
    client = redis_client()
    usage_group_ensure(client)
    for number in range(count):
        usage_emit_sync(_event(world.acme, f"{committed}-{number}"))
    doomed = spawn(
        ["manage.py", "consume_usage", "--consumer", "doomed", "--count", str(batch)],
        Path("metering-doomed.log"),
        GATEHOUSE_USAGE_TEST_PAUSE_BEFORE_ACK="60",
    )
    wait_for(_stored(schema, committed, batch), what="the doomed consumer's commit", proc=doomed, seconds=60)
    doomed.send_signal(signal.SIGKILL)  # committed, paused before XACK
    doomed.wait()
    assert client.xpending(USAGE_STREAM, GROUP)["pending"] == batch
    time.sleep(0.3)  # let the dead consumer's entries idle past --claim-idle-ms

    survivor = spawn(
        ["manage.py", "consume_usage", "--once", "--consumer", "survivor", "--claim-idle-ms", "200"],
        Path("metering-survivor.log"),
        pipe=True,
    )
    output, _ = survivor.communicate(timeout=120)

    assert survivor.returncode == 0
    assert f"handled {count} event(s)" in output.decode()
    request_ids = _request_ids(schema, committed)
    assert len(request_ids) == len(set(request_ids)) == count
    assert _settled()
    assert _dead_letters() == []


def test_a_consumer_process_stores_events_and_stops_cleanly_on_sigterm(
    world: World, committed: str, spawn: Spawn, artifacts_dir: Path
) -> None:
    consumer = spawn(["manage.py", "consume_usage", "--consumer", "steady"], Path("metering-consumer.log"))
    for number in range(20):
        usage_emit_sync(_event(world.acme, f"{committed}-{number}"))

    wait_for(_stored(world.acme.schema_name, committed, 20), what="the consumer", proc=consumer, seconds=60)
    consumer.terminate()

    assert consumer.wait(timeout=15) == 0
    assert "usage: stopped" in (artifacts_dir / "metering-consumer.log").read_text()
    assert _settled()
