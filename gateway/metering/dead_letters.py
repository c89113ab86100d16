"""Dead letters of the usage pipeline: stream entries (or spool lines, or open records) that could not be
parsed at all, kept in the capped stream `gh:usage:dead` with the reason, to be listed, explained and
replayed (`manage.py usage_dead_letters`) once whatever made them unreadable is understood or fixed.

Nothing billable is expected here: events are bounded where they are built, so every event the gateway emits
parses and stores. An entry lands here only if it was corrupted, written by hand, or by a future version
this one cannot read; replaying it after an upgrade stores it, exactly once (storing is idempotent).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson
from django.conf import settings

from gateway.metering.events import UsageEvent, usage_event_parse
from gateway.metering.store import usage_store

if TYPE_CHECKING:
    import redis

DEAD_STREAM = "gh:usage:dead"
DEAD_TOTAL = "gh:usage:dead:total"
DEAD_FIELD_MAX = 64 * 1024  # bytes of the original entry kept in a dead letter
EVENT_FIELD = "event"  # as in gateway.metering.emit (not imported: emit is the hot path's module)
OPEN_FIELD = "open"  # a dead open record (gateway.metering.reaper)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str  # in the dead-letter stream
    source: str  # the entry's id in gh:usage, a spool file's line, or an open record
    reason: str
    fields: dict[str, Any] | None  # the original entry's fields; None if they were cut and do not parse
    raw: bytes


def dead_letter_add(pipe: redis.client.Pipeline, fields: dict[str, str], *, source: str, reason: str) -> None:
    """Queue (on `pipe`) one dead letter: the original entry as one JSON field (cut to DEAD_FIELD_MAX bytes),
    where it came from and why it could not be stored. The stream is capped; the total is counted."""
    original = orjson.dumps(fields)
    if len(original) > DEAD_FIELD_MAX:
        original = original[:DEAD_FIELD_MAX]
        reason = f"{reason} (entry cut to {DEAD_FIELD_MAX} bytes)"
    pipe.xadd(
        DEAD_STREAM,
        {"fields": original, "source_id": source[:200], "reason": reason[:500]},
        maxlen=int(settings.GATEHOUSE_USAGE_DEAD_MAX),
        approximate=True,
    )
    pipe.incr(DEAD_TOTAL)


def dead_letter_list(client: redis.Redis, *, count: int = 100, ids: Iterable[str] = ()) -> list[DeadLetter]:
    """The oldest `count` dead letters, or those with the given ids."""
    wanted = list(ids)
    if wanted:
        entries = []
        for entry_id in wanted:
            entries += cast("list[Any]", client.xrange(DEAD_STREAM, entry_id, entry_id))
    else:
        entries = cast("list[Any]", client.xrange(DEAD_STREAM, count=count))
    return [_letter(entry_id, data) for entry_id, data in entries]


def dead_letter_stats(client: redis.Redis) -> tuple[int, int]:
    """(dead letters kept now, dead letters ever written)."""
    pipe = client.pipeline(transaction=False)
    pipe.xlen(DEAD_STREAM)
    pipe.get(DEAD_TOTAL)
    kept, total = pipe.execute()
    return int(kept), int(total or 0)


def dead_letter_explain(letter: DeadLetter) -> str:
    """Why the entry was refused, and whether today's code reads it (and so would store it on replay)."""
    lines = [f"dead letter {letter.id} (from {letter.source})", f"  refused: {letter.reason}"]
    try:
        event = _event(letter)
    except Exception as error:
        lines.append(f"  now: still unreadable ({type(error).__name__}: {str(error)[:300]})")
        return "\n".join(lines)
    lines.append(
        f"  now: parses: request {event.request_id} of {event.tenant_schema}, "
        f"{event.input_tokens}+{event.output_tokens} tokens, price {event.price}; replay would store it"
    )
    return "\n".join(lines)


def dead_letter_replay(client: redis.Redis, letters: Iterable[DeadLetter]) -> tuple[int, list[str]]:
    """Store the events of `letters` that parse now (idempotently), delete those letters; returns (how many
    were replayed, the reasons of those still unreadable, which stay)."""
    events: list[tuple[DeadLetter, UsageEvent]] = []
    failures: list[str] = []
    for letter in letters:
        try:
            events.append((letter, _event(letter)))
        except Exception as error:
            failures.append(f"{letter.id}: {type(error).__name__}: {str(error)[:300]}")
    if events:
        usage_store([event for _letter, event in events])
        client.xdel(DEAD_STREAM, *[letter.id for letter, _event in events])
    return len(events), failures


def dead_letter_delete(client: redis.Redis, ids: Iterable[str]) -> int:
    wanted = list(ids)
    return int(client.xdel(DEAD_STREAM, *wanted)) if wanted else 0


def _event(letter: DeadLetter) -> UsageEvent:
    if letter.fields is None:
        raise ValueError("the entry was cut when it was dead-lettered and cannot be parsed")
    opened = letter.fields.get(OPEN_FIELD)
    if isinstance(opened, str):  # an open record the reaper could not settle: its event
        record = orjson.loads(opened)
        if not isinstance(record, dict) or not isinstance(record.get("event"), dict):
            raise TypeError("the open record holds no event")
        return UsageEvent.from_json_dict(record["event"])
    return usage_event_parse(letter.fields[EVENT_FIELD])


def _letter(entry_id: str, data: dict[str, str]) -> DeadLetter:
    raw = (data.get("fields") or "").encode()
    try:
        fields = orjson.loads(raw)
    except orjson.JSONDecodeError:
        fields = None
    return DeadLetter(
        id=entry_id,
        source=data.get("source_id", ""),
        reason=data.get("reason", ""),
        fields=fields if isinstance(fields, dict) else None,
        raw=raw,
    )
