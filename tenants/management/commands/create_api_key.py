"""create_api_key --tenant S [--name N]: prints the new key once."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from gateway.keys import api_key_create
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Create an API key for a tenant and print it. It is shown only this once."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug")
        parser.add_argument("--name", default="API key")
        parser.add_argument("--expires-in-days", type=int)
        parser.add_argument("--models", default="", help="Comma-separated allow-list (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {options['tenant']!r}")
        days = options["expires_in_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-in-days must be at least 1")
        created = api_key_create(
            tenant=tenant,
            name=options["name"],
            expires_at=timezone.now() + timedelta(days=days) if days else None,
            allowed_models=[m.strip() for m in options["models"].split(",") if m.strip()],
        )
        self.stdout.write(created.raw_key)
