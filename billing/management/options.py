"""The `--period YYYY-MM [--tenant S]` options the billing commands share."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from billing.periods import period_bounds
from tenants.models import Tenant


def period_options_add(parser: ArgumentParser) -> None:
    parser.add_argument("--period", required=True, help="YYYY-MM (UTC)")
    parser.add_argument("--tenant", help="Only this tenant (slug)")


def period_options_read(options: dict[str, Any]) -> tuple[str, Tenant | None]:
    """The validated period and the tenant (or None for every tenant); CommandError otherwise."""
    period: str = options["period"]
    try:
        period_bounds(period)
    except ValidationError as error:
        raise CommandError(error.messages[0]) from None
    if not options["tenant"]:
        return period, None
    tenant = Tenant.objects.filter(slug=options["tenant"]).first()
    if tenant is None:
        raise CommandError(f"No tenant {options['tenant']!r}.")
    return period, tenant
