"""Managing a tenant's PII policy: validated, and applied by every web process at once."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django_tenants.utils import schema_context

from gateway.invalidation import invalidate_publish
from gateway.models import PiiSettings
from gateway.pii.detect import CATEGORIES
from gateway.pii.policy import ACTIONS, PiiPolicy, pii_policy_load
from tenants.models import Tenant


def pii_settings_set(
    *, tenant: Tenant, actions: dict[str, str], restore: bool = True, scan_answers: bool = False
) -> PiiSettings:
    """Set the tenant's action per category (those not named keep the deployment default).

    Raises ValidationError for an unknown category or action.
    """
    for category, action in actions.items():
        if category not in CATEGORIES:
            raise ValidationError(f"Unknown PII category {category!r} (one of {', '.join(CATEGORIES)}).")
        if action not in ACTIONS:
            raise ValidationError(f"Unknown action {action!r} for {category} (one of {', '.join(ACTIONS)}).")
    tenant_id = tenant.pk
    with schema_context(tenant.schema_name), transaction.atomic():
        row, _ = PiiSettings.objects.update_or_create(
            pk=1, defaults={"actions": actions, "restore": restore, "scan_answers": scan_answers}
        )
        transaction.on_commit(lambda: invalidate_publish(f"tenant:{tenant_id}"))
    return row


def pii_policy_get(*, tenant: Tenant) -> PiiPolicy:
    """The tenant's policy in force (its own actions over the deployment defaults)."""
    with schema_context(tenant.schema_name):
        return pii_policy_load()
