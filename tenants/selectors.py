"""Reads on tenants and memberships, including the permission checks the portal relies on."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from tenants.models import Membership, Tenant


def membership_get(*, user: AbstractBaseUser | AnonymousUser, tenant: Tenant) -> Membership | None:
    """The user's membership of the tenant, or None: the one check that admits a user to a portal."""
    if not user.is_authenticated:
        return None
    if not user.is_active:
        return None
    return Membership.objects.filter(user_id=user.pk, tenant=tenant).first()


def membership_list_for_user(*, user: AbstractBaseUser) -> QuerySet[Membership]:
    return Membership.objects.filter(user_id=user.pk).select_related("tenant").order_by("tenant__name")


def membership_list_for_tenant(*, tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__email")


def tenant_list() -> QuerySet[Tenant]:
    return Tenant.objects.select_related("plan").order_by("name")
