"""create_tenant --slug S --name N --owner-email E [--plan P]: prints JSON with the portal URL and login."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from billing.models import Plan
from tenants.services import tenant_create, tenant_portal_url


class Command(BaseCommand):
    help = "Create a tenant (schema, domain, owner) and print its portal URL and owner login as JSON."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--plan", help="Plan slug (default: the default plan)")

    def handle(self, *args: Any, **options: Any) -> None:
        plan = None
        if options["plan"]:
            plan = Plan.objects.filter(slug=options["plan"]).first()
            if plan is None:
                known = ", ".join(Plan.objects.values_list("slug", flat=True))
                raise CommandError(f"Unknown plan {options['plan']!r}; known plans: {known}")
        try:
            created = tenant_create(
                slug=options["slug"],
                name=options["name"],
                owner_email=options["owner_email"],
                plan=plan,
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stdout.write(
            json.dumps(
                {
                    "tenant": created.tenant.slug,
                    "schema": created.tenant.schema_name,
                    "plan": created.tenant.plan.slug,
                    "portal_url": tenant_portal_url(created.tenant),
                    "owner_email": created.owner.email,
                    # null when the owner already had an account (their password is unchanged)
                    "owner_password": created.owner_password,
                },
                indent=2,
            )
        )
