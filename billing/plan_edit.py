"""Operators' edits of plans: a plan's fields and its per-model prices, saved together. Every running gateway
then reloads the prices of the plan's tenants (the save signals call billing.plans.plan_changed)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from billing.models import Plan, PlanModelPrice


def model_price_check(price: PlanModelPrice) -> None:
    """A markup rule needs its percent, a fixed rule both prices per 1M; amounts are never negative. The
    fields the rule does not use are emptied (plan_pricing_load ignores them anyway).

    Raises ValidationError with the errors by field name."""
    fixed = price.rule == PlanModelPrice.Rule.FIXED
    needed = ["input_price_per_mtok", "output_price_per_mtok"] if fixed else ["markup_percent"]
    unused = ["markup_percent"] if fixed else ["input_price_per_mtok", "output_price_per_mtok"]
    errors: dict[str, str] = {}
    for name in needed:
        value: Decimal | None = getattr(price, name)
        if value is None:
            errors[name] = f"A {price.get_rule_display().lower()} needs this."
        elif value < 0:
            errors[name] = "Must not be negative."
    if errors:
        raise ValidationError(errors)
    for name in unused:
        setattr(price, name, None)


@transaction.atomic
def plan_save(
    *,
    plan: Plan,
    is_default: bool,
    prices: Sequence[PlanModelPrice] = (),
    removed: Sequence[PlanModelPrice] = (),
) -> Plan:
    """Create or update `plan` with its new or changed per-model `prices` and without the `removed` ones.

    `is_default` makes it the plan of self-service sign-ups, in place of the previous one (there is always
    one: taking the flag off the default plan is refused). Raises ValidationError on a price that breaks
    `model_price_check`; nothing is saved then."""
    for price in prices:
        model_price_check(price)
    if not is_default and plan.pk and Plan.objects.filter(pk=plan.pk, is_default=True).exists():
        raise ValidationError(
            "Self-service sign-ups need a default plan: make another plan the default instead.",
            code="default_needed",
        )
    if is_default:
        Plan.objects.filter(is_default=True).exclude(pk=plan.pk).update(is_default=False)
    plan.is_default = is_default
    plan.save()
    for price in removed:
        price.delete()
    for price in prices:
        price.plan = plan
        price.save()
    return plan
