"""set_pii_policy --tenant S [CATEGORY=ACTION ...] [--no-restore] [--scan-answers]: a tenant's PII policy
(docs/PII.md)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from gateway.pii.manage import pii_settings_set
from gateway.pii.policy import pii_policy_load
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Set a tenant's PII actions per category (off, redact, block); unnamed categories keep the default."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug")
        parser.add_argument("actions", nargs="*", help="CATEGORY=ACTION, e.g. email=redact ssn=block")
        parser.add_argument("--no-restore", action="store_true", help="Leave placeholders in answers")
        parser.add_argument(
            "--scan-answers", action="store_true", help="Also remove those categories from answers"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        actions = {}
        for item in options["actions"]:
            category, sep, action = item.partition("=")
            if not sep:
                raise CommandError(f"Expected CATEGORY=ACTION, got {item!r}.")
            actions[category.strip()] = action.strip()
        try:
            pii_settings_set(
                tenant=tenant,
                actions=actions,
                restore=not options["no_restore"],
                scan_answers=options["scan_answers"],
            )
        except ValidationError as invalid:
            raise CommandError(" ".join(invalid.messages)) from invalid
        with schema_context(tenant.schema_name):
            policy = pii_policy_load()
        summary = ", ".join(f"{c}={a}" for c, a in sorted(policy.actions.items()))
        on = {True: "on", False: "off"}
        self.stdout.write(
            f"{tenant.slug}: {summary}; restore={on[policy.restore]}; scan answers={on[policy.scan_answers]}"
        )
