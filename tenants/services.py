"""Writes on tenants, domains, users and memberships."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing.models import Plan, PlanAssignment
from gateway.invalidation import invalidate_publish
from tenants.models import Domain, Membership, Tenant, User
from tenants.slugs import schema_name_for, slug_validate


@dataclass(frozen=True)
class TenantCreated:
    tenant: Tenant
    owner: User
    owner_password: str | None  # set only when a new owner account was created with a generated password


def tenant_domain_for(slug: str) -> str:
    return f"{slug}.{settings.GATEHOUSE_BASE_DOMAIN}"


def tenant_portal_url(tenant: Tenant) -> str:
    """The portal's URL, on the same scheme and port as the public URL."""
    scheme, _, rest = settings.GATEHOUSE_PUBLIC_URL.partition("://")
    port = rest.split("/")[0].partition(":")[2]
    host = tenant_domain_for(tenant.slug)
    return f"{scheme}://{host}{':' + port if port else ''}/"


def plan_get_default() -> Plan:
    plan = Plan.objects.filter(is_default=True).first()
    if plan is None:
        raise ValidationError("No default plan is configured.", code="no_default_plan")
    return plan


@transaction.atomic
def tenant_create(
    *,
    slug: str,
    name: str,
    owner_email: str,
    owner_password: str | None = None,
    plan: Plan | None = None,
) -> TenantCreated:
    """Create a tenant with its schema (migrated), its domain, and an owner membership.

    An existing user with `owner_email` becomes the owner (their password is left alone). A new user gets
    `owner_password`, or a generated one which is returned once. Raises ValidationError on a bad or taken
    slug or a weak password; nothing is left behind then.
    """
    slug = slug.strip().lower()
    slug_validate(slug)
    if (
        Tenant.objects.filter(slug=slug).exists()
        or Domain.objects.filter(domain=tenant_domain_for(slug)).exists()
    ):
        raise ValidationError("That name is taken.", code="taken")
    email = owner_email.strip().lower()
    owner = User.objects.filter(email=email).first()
    generated: str | None = None
    if owner is None:
        owner = User(email=email)
        if owner_password is None:
            generated = owner_password = secrets.token_urlsafe(12)
        validate_password(owner_password, owner)
        owner.set_password(owner_password)
        owner.save()
    tenant = Tenant(
        slug=slug,
        name=name.strip() or slug,
        schema_name=schema_name_for(slug),
        plan=plan or plan_get_default(),
    )
    tenant.save(verbosity=0)  # creates and migrates the schema
    PlanAssignment.objects.create(tenant=tenant, plan=tenant.plan, starts_at=tenant.created_at)
    Domain.objects.create(domain=tenant_domain_for(slug), tenant=tenant, is_primary=True)
    Membership.objects.create(user=owner, tenant=tenant, role=Membership.Role.OWNER)
    return TenantCreated(tenant=tenant, owner=owner, owner_password=generated)


def tenant_suspend(*, tenant: Tenant, reason: str = "") -> Tenant:
    """Suspend a tenant: its API keys are refused with 403; its members can still sign in to the portal
    (read-only: to see usage and pay invoices) but cannot create keys."""
    tenant.status = Tenant.Status.SUSPENDED
    tenant.suspended_at = timezone.now()
    tenant.suspension_reason = reason[:200]
    tenant.save(update_fields=["status", "suspended_at", "suspension_reason"])
    _tenant_changed(tenant)
    return tenant


def _tenant_changed(tenant: Tenant) -> None:
    tenant_id = tenant.pk
    transaction.on_commit(lambda: invalidate_publish(f"tenant:{tenant_id}"))


def tenant_reactivate(*, tenant: Tenant) -> Tenant:
    tenant.status = Tenant.Status.ACTIVE
    tenant.suspended_at = None
    tenant.suspension_reason = ""
    tenant.save(update_fields=["status", "suspended_at", "suspension_reason"])
    _tenant_changed(tenant)
    return tenant


@transaction.atomic
def tenant_delete(*, tenant: Tenant) -> None:
    """Delete a tenant for good: its schema (keys, records) is dropped, with its domains, memberships and
    API-key index rows. Users stay (they may belong to other tenants)."""
    _tenant_changed(tenant)
    tenant.delete(force_drop=True)


def membership_add(*, tenant: Tenant, user: User, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
    return membership
