"""set_limits --tenant S [--key PREFIX] [--rpm N] [--tpm N] [--concurrency N] [--monthly-budget AMOUNT] ...

A tenant's limits (or one API key's), within the tenant's plan unless --above-plan; `none` clears a value
(the tenant's falls back to the plan's default; a key's to no limit of its own). docs/LIMITS.md.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser, ArgumentTypeError
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from gateway.limits.manage import UNCHANGED, limits_set
from tenants.models import Tenant


def _count(raw: str) -> int | None:
    if raw.lower() == "none":
        return None
    if not raw.isdigit():
        raise ArgumentTypeError(f"expected a whole number or 'none', got {raw!r}")
    return int(raw)


def _amount(raw: str) -> Decimal | None:
    if raw.lower() == "none":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ArgumentTypeError(f"expected an amount such as 250.00 or 'none', got {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise ArgumentTypeError(f"expected a non-negative amount, got {raw!r}")
    return value.quantize(Decimal("0.01"))


class Command(BaseCommand):
    help = "Set a tenant's or an API key's rate limits and monthly budget (docs/LIMITS.md)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant slug")
        parser.add_argument("--key", help="An API key's prefix (the part after gate_), for that key alone")
        parser.add_argument("--rpm", type=_count, default=UNCHANGED, help="Requests per minute")
        parser.add_argument("--tpm", type=_count, default=UNCHANGED, help="Tokens per minute")
        parser.add_argument("--concurrency", type=_count, default=UNCHANGED, help="Requests in flight")
        parser.add_argument("--monthly-budget", type=_amount, default=UNCHANGED, help="Spend per month")
        parser.add_argument("--monthly-token-cap", type=_count, default=UNCHANGED, help="Tokens per month")
        parser.add_argument("--soft-percent", type=int, help="Alert threshold, percent of a budget")
        parser.add_argument("--context-overflow", choices=["refuse", "truncate"], help="Prompt too long")
        parser.add_argument("--above-plan", action="store_true", help="Allow values above the plan's")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        names = ("rpm", "tpm", "concurrency", "monthly_budget", "monthly_token_cap")
        values = {name: options[name] for name in names if options[name] is not UNCHANGED}
        if options["key"] and (options["soft_percent"] or options["context_overflow"]):
            raise CommandError(
                "--soft-percent and --context-overflow are the tenant's settings, not a key's."
            )
        try:
            limits = limits_set(
                tenant=tenant,
                key_prefix=options["key"],
                above_plan=options["above_plan"],
                soft_percent=options["soft_percent"],
                context_overflow=options["context_overflow"],
                **values,
            )
        except ValidationError as invalid:
            raise CommandError(" ".join(invalid.messages)) from invalid
        shown = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(limits).items()}
        self.stdout.write(json.dumps({"tenant": tenant.slug, "key": options["key"], "limits": shown}))
