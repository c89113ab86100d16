from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from billing.models import Plan, PlanModelPrice

        # However a plan's prices change (console, admin, shell), running gateways reload them.
        post_save.connect(_plan_saved, sender=Plan, dispatch_uid="billing-plan-saved")
        post_save.connect(_rule_saved, sender=PlanModelPrice, dispatch_uid="billing-rule-saved")
        post_delete.connect(_rule_saved, sender=PlanModelPrice, dispatch_uid="billing-rule-deleted")


def _plan_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    from billing.plans import plan_changed

    plan_changed(instance)


def _rule_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    from billing.models import Plan
    from billing.plans import plan_changed

    plan = Plan.objects.filter(pk=instance.plan_id).first()
    if plan is not None:
        plan_changed(plan)
