"""seed_demo: the demo tenant, its users and key, and synthetic history. Safe to run again."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from tenants.demo import DEVELOPER_EMAIL, OPERATOR_EMAIL, OWNER_EMAIL, demo_seed
from tenants.services import tenant_portal_url


class Command(BaseCommand):
    help = "Seed (or refresh) the demo tenant and print its URLs, logins and API key."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--banner", action="store_true", help="Print the make-run banner")

    def handle(self, *args: Any, **options: Any) -> None:
        seed = demo_seed()
        public = settings.GATEHOUSE_PUBLIC_URL.rstrip("/")
        lines = [
            "",
            "Gatehouse is starting. Open:",
            f"  Operator console   {public}/console/   {OPERATOR_EMAIL} / {seed.operator_password}",
            f"  Django admin       {public}/admin/",
            f"  Demo portal        {tenant_portal_url(seed.tenant)}   {OWNER_EMAIL} / {seed.owner_password}",
            f"                     (developer: {DEVELOPER_EMAIL} / {seed.developer_password})",
            f"  Sign-up            {public}/signup/",
            f"  Health             {public}/healthz   {public}/readyz",
            f"  Demo API key       {seed.api_key}",
            f"  Inference API      {public}/v1   (OpenAI-compatible; use the demo key as api_key)",
            "  (credentials are kept in .data/demo-credentials.json; Ctrl-C stops everything)",
            "",
        ]
        if options["banner"]:
            self.stdout.write("\n".join(lines))
        else:
            self.stdout.write(f"Seeded tenant {seed.tenant.slug}; demo API key: {seed.api_key}")
