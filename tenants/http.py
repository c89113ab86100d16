"""Request types that say what Gatehouse's middleware adds to Django's HttpRequest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from tenants.models import Membership, Tenant, User


class HostRequest(HttpRequest):
    """Any request after TenantHostMiddleware: `tenant` is None on the public host."""

    tenant: Tenant | None
    membership: Membership | None
    urlconf: str


class PortalRequest(HostRequest):
    """A request to a portal view, which `member_required` guarantees is a member's."""

    tenant: Tenant
    membership: Membership
    user: User
