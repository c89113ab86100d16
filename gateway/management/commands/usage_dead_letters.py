"""usage_dead_letters list|explain|replay|delete: the usage pipeline's dead letters (gh:usage:dead).

list [--count N]            the oldest N dead letters: id, source, reason
explain ID [ID ...]         why each was refused, and whether today's code can read it
replay (ID [ID ...] | --all)  store those that parse now (idempotently) and remove them; others stay
delete ID [ID ...]          remove dead letters for good
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.redis import redis_client
from gateway.metering.dead_letters import (
    dead_letter_delete,
    dead_letter_explain,
    dead_letter_list,
    dead_letter_replay,
    dead_letter_stats,
)

REPLAY_BATCH = 500


class Command(BaseCommand):
    help = "List, explain, replay or delete the usage pipeline's dead letters (gh:usage:dead)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("action", choices=["list", "explain", "replay", "delete"])
        parser.add_argument("ids", nargs="*", help="Dead-letter ids (as `list` prints them)")
        parser.add_argument("--count", type=int, default=100, help="How many to list (default 100)")
        parser.add_argument("--all", action="store_true", help="replay: every dead letter")

    def handle(self, *args: Any, **options: Any) -> None:
        client = redis_client()
        action: str = options["action"]
        ids: list[str] = options["ids"]
        if action == "list":
            kept, total = dead_letter_stats(client)
            self.stdout.write(f"{kept} dead letter(s) kept, {total} ever written")
            for letter in dead_letter_list(client, count=options["count"]):
                self.stdout.write(f"{letter.id}  {letter.source}  {letter.reason}")
            return
        if action == "replay" and options["all"]:
            self._replay_all(client)
            return
        if not ids:
            hint = ", or --all" if action == "replay" else ""
            raise CommandError(f"{action}: give dead-letter ids (see `list`){hint}")
        if action == "delete":
            self.stdout.write(f"deleted {dead_letter_delete(client, ids)} dead letter(s)")
            return
        letters = dead_letter_list(client, ids=ids)
        missing = sorted(set(ids) - {letter.id for letter in letters})
        for entry_id in missing:
            self.stderr.write(f"{entry_id}: no such dead letter")
        if action == "explain":
            for letter in letters:
                self.stdout.write(dead_letter_explain(letter))
            return
        replayed, failures = dead_letter_replay(client, letters)
        self._report(replayed, failures)

    def _replay_all(self, client: Any) -> None:
        # The stream is capped (GATEHOUSE_USAGE_DEAD_MAX): all of it fits in memory; stored in batches.
        letters = dead_letter_list(client, count=max(int(settings.GATEHOUSE_USAGE_DEAD_MAX) * 2, 1))
        replayed, failures = 0, []
        for start in range(0, len(letters), REPLAY_BATCH):
            done, failed = dead_letter_replay(client, letters[start : start + REPLAY_BATCH])
            replayed += done
            failures += failed
        self._report(replayed, failures)

    def _report(self, replayed: int, failures: list[str]) -> None:
        self.stdout.write(f"replayed {replayed} dead letter(s) into the ledger")
        for failure in failures:
            self.stdout.write(f"still unreadable, kept: {failure}")
