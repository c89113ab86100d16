"""Dead letters are only for entries that cannot be parsed at all: capped, counted in /metrics, and listed,
explained and replayed by `manage.py usage_dead_letters`."""

from __future__ import annotations

import io
from typing import Any, cast

import httpx
import orjson
import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from config.redis import redis_client
from gateway.metering.consumer import GROUP, usage_consume_once, usage_group_ensure
from gateway.metering.dead_letters import DEAD_STREAM, DEAD_TOTAL, dead_letter_add
from gateway.metering.emit import USAGE_STREAM, usage_event_payload
from gateway.models import RequestRecord
from tests.gateway.metering_crash import make_event
from tests.ledger.conftest import Ledgerco


def _command(*args: str) -> str:
    out = io.StringIO()
    call_command("usage_dead_letters", *args, stdout=out, stderr=out)
    return out.getvalue()


def _dead_letters() -> list[tuple[str, dict[str, str]]]:
    return cast("list[tuple[str, dict[str, str]]]", redis_client().xrange(DEAD_STREAM))


def _dead_ids() -> list[str]:
    return [entry_id for entry_id, _fields in _dead_letters()]


def test_dead_letters_are_listed_explained_and_replayed_once_readable(ledgerco: Ledgerco) -> None:
    client = redis_client()
    usage_group_ensure(client)
    client.xadd(USAGE_STREAM, {"event": "{not json"})
    usage_consume_once(client, "dead-letter-tests")
    # An event an older version could not store, dead-lettered as it was then: readable today.
    event = make_event("req_from_the_past", schema=ledgerco.schema, tenant_id=ledgerco.tenant.pk)
    pipe = client.pipeline()
    dead_letter_add(
        pipe, {"event": usage_event_payload(event).decode()}, source="1-0", reason="rejected: DataError: x"
    )
    pipe.execute()
    unreadable, readable = _dead_ids()

    listing = _command("list")
    assert "2 dead letter(s) kept, 2 ever written" in listing
    assert f"{unreadable}  " in listing
    assert "malformed: JSONDecodeError" in listing
    explained = _command("explain", unreadable, readable)
    assert "still unreadable (JSONDecodeError" in explained
    assert "parses: request req_from_the_past" in explained
    assert "replay would store it" in explained

    replayed = _command("replay", "--all")
    assert "replayed 1 dead letter(s) into the ledger" in replayed
    assert "still unreadable, kept" in replayed
    assert _dead_ids() == [unreadable]
    _command("replay", "--all")  # again: nothing stored twice
    with schema_context(ledgerco.schema):
        assert RequestRecord.objects.filter(request_id="req_from_the_past").count() == 1

    assert "deleted 1 dead letter(s)" in _command("delete", unreadable)
    assert _dead_ids() == []
    assert client.get(DEAD_TOTAL) == "2"  # ever written, for /metrics


def test_the_dead_letter_stream_is_capped_and_each_letter_cut(settings: Any) -> None:
    settings.GATEHOUSE_USAGE_DEAD_MAX = 100
    client = redis_client()
    for number in range(1_000):
        pipe = client.pipeline()
        dead_letter_add(
            pipe, {"event": "x" * 200_000 if number == 0 else "{"}, source=str(number), reason="r"
        )
        pipe.execute()

    assert client.xlen(DEAD_STREAM) <= 200  # MAXLEN ~ trims whole nodes: about the cap
    assert client.get(DEAD_TOTAL) == "1000"
    assert max(len(fields["fields"]) for _id, fields in _dead_letters()) <= 64 * 1024


def test_the_commands_arguments_are_checked() -> None:
    with pytest.raises(CommandError, match="give dead-letter ids"):
        _command("replay")
    assert "no such dead letter" in _command("explain", "1-1")


def test_metrics_show_the_usage_pipeline(gateway: str) -> None:
    client = redis_client()
    usage_group_ensure(client)
    client.xadd(USAGE_STREAM, {"event": "not json"})
    usage_consume_once(client, "dead-letter-tests")

    metrics = httpx.get(f"{gateway}/metrics", timeout=10).text

    assert "gatehouse_usage_dead_letters 1.0" in metrics
    assert "gatehouse_usage_dead_lettered 1.0" in metrics
    assert "gatehouse_usage_stream_length 0.0" in metrics
    assert client.xpending(USAGE_STREAM, GROUP)["pending"] == 0
    assert orjson.loads(_dead_letters()[0][1]["fields"]) == {"event": "not json"}
