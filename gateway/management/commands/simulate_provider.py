"""`manage.py simulate_provider`: run the provider simulator (a fake OpenAI/Anthropic upstream)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Run the provider simulator: a fake OpenAI- and Anthropic-compatible upstream (models sim/*), "
        "controlled at run time through POST /_control. Needs no database and no provider keys."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=8100)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from gateway.simulator.server import build_server

        host, port = options["host"], options["port"]
        self.stdout.write(
            f"Provider simulator (not a real provider) on http://{host}:{port}/v1 ; control: /_control"
        )
        self.stdout.flush()
        build_server(host, port, log_level=options["log_level"]).run()
