"""A tenant's fallback chains: per task type, the ordered models that `auto` routing tries."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django_tenants.utils import schema_context

from gateway.catalog.models import CatalogModel
from gateway.invalidation import invalidate_publish
from gateway.models import FallbackChain
from gateway.routing import TASK_TYPES
from tenants.models import Tenant

MAX_CHAIN = 8


def chains_effective(*, tenant: Tenant) -> dict[str, tuple[list[str], bool]]:
    """Per task type: the chain in force and whether it is the tenant's own (else the default)."""
    with schema_context(tenant.schema_name):
        own = {c.task_type: list(c.model_names) for c in FallbackChain.objects.all()}
    defaults: dict[str, list[str]] = settings.GATEHOUSE_DEFAULT_CHAINS
    return {
        task: (own[task], True) if task in own else (defaults.get(task, []), False) for task in TASK_TYPES
    }


def chain_set(*, tenant: Tenant, task_type: str, model_names: list[str] | None) -> None:
    """Set (or with None, remove) the tenant's chain for a task type; every web process applies it at once.

    Raises ValidationError for an unknown task type, unknown or inactive models, or a too long chain.
    """
    if task_type not in TASK_TYPES:
        raise ValidationError(f"Unknown task type {task_type!r}.")
    with schema_context(tenant.schema_name), transaction.atomic():
        if model_names is None:
            FallbackChain.objects.filter(task_type=task_type).delete()
        else:
            names = list(dict.fromkeys(model_names))
            if not names or len(names) > MAX_CHAIN:
                raise ValidationError(f"A chain has 1 to {MAX_CHAIN} models.")
            known = set(
                CatalogModel.objects.filter(name__in=names, is_active=True).values_list("name", flat=True)
            )
            unknown = [name for name in names if name not in known]
            if unknown:
                raise ValidationError(f"Not in the catalogue: {', '.join(unknown)}.")
            FallbackChain.objects.update_or_create(task_type=task_type, defaults={"model_names": names})
        tenant_id = tenant.pk
        transaction.on_commit(lambda: invalidate_publish(f"tenant:{tenant_id}"))
