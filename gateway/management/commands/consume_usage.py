"""consume_usage [--consumer NAME] [--once]: move usage events from Redis and spool files into tenant schemas.

Run one per machine that runs web processes (spool files are local), more for throughput, each with its own
--consumer name. SIGTERM/SIGINT stop it after the current batch.
"""

from __future__ import annotations

import signal
import socket
import threading
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from config.redis import redis_client
from gateway.metering.consumer import ConsumerOptions, usage_consume_forever, usage_consume_once


class Command(BaseCommand):
    help = "Store usage events from the Redis Stream gh:usage and spool files as per-request records."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--consumer",
            default=socket.gethostname(),
            help="Consumer name in the group, unique per running process (default: the host name, so that a "
            "restarted consumer resumes its own pending entries at once)",
        )
        parser.add_argument("--once", action="store_true", help="Handle what is there now, then exit")
        parser.add_argument("--count", type=int, default=500, help="Entries per batch (default 500)")
        parser.add_argument(
            "--linger-ms",
            type=int,
            default=100,
            help="After a batch smaller than --count, wait this long so that the next one is larger "
            "(default 100; 0: read again at once)",
        )
        parser.add_argument(
            "--claim-idle-ms",
            type=int,
            default=30_000,
            help="Take over other consumers' entries pending this long (default 30000)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings = ConsumerOptions(
            count=options["count"],
            claim_idle_ms=options["claim_idle_ms"],
            linger_s=options["linger_ms"] / 1000,
        )
        client = redis_client()
        consumer: str = options["consumer"]
        if options["once"]:
            handled = usage_consume_once(client, consumer, settings)
            self.stdout.write(f"usage: handled {handled} event(s)")
            return
        stop = threading.Event()

        def request_stop(signum: int, _frame: object) -> None:
            self.stderr.write(f"usage: {signal.Signals(signum).name}: stopping after the current batch")
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        self.stdout.write(f"usage: consumer {consumer} reading gh:usage")
        usage_consume_forever(client, consumer, stop, settings)
        self.stdout.write("usage: stopped")
