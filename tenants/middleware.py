"""Host-based tenant resolution and the portal's membership gate."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.core.exceptions import DisallowedHost
from django.http import HttpResponse, HttpResponseForbidden, HttpResponseNotFound
from django.template.loader import render_to_string
from django.urls import set_urlconf

from tenants.http import HostRequest
from tenants.models import Domain
from tenants.schemas import schema_set_public, schema_set_tenant
from tenants.selectors import membership_get

SESSION_TENANT_KEY = "gatehouse_tenant_id"


class TenantHostMiddleware:
    """Pick the schema and URLconf from the Host header.

    Public hosts (GATEHOUSE_PUBLIC_HOSTS) get the public schema and urls_public; a tenant's domain gets its
    schema and urls_tenants; any other host is a 404, never someone else's portal.
    """

    def __init__(self, get_response: Callable[[HostRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HostRequest) -> HttpResponse:
        schema_set_public()
        try:
            hostname = request.get_host().rsplit(":", 1)[0].lower()
        except DisallowedHost:
            return HttpResponseNotFound("Unknown host")
        if hostname in settings.GATEHOUSE_PUBLIC_HOSTS:
            request.tenant = None
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
        else:
            domain = Domain.objects.select_related("tenant", "tenant__plan").filter(domain=hostname).first()
            if domain is None:
                return HttpResponseNotFound(
                    render_to_string("errors/unknown_tenant.html", {"hostname": hostname})
                )
            request.tenant = domain.tenant
            schema_set_tenant(domain.tenant)
            request.urlconf = settings.ROOT_URLCONF
        set_urlconf(request.urlconf)
        try:
            return self.get_response(request)
        finally:
            schema_set_public()


class TenantMembershipMiddleware:
    """On a tenant host, a signed-in session must belong to a member of that tenant.

    Sessions are host-only cookies, so this is defence in depth: a session carried to another tenant's host
    (or whose membership was removed) is logged out and refused.
    """

    def __init__(self, get_response: Callable[[HostRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HostRequest) -> HttpResponse:
        tenant = request.tenant
        if tenant is not None and request.user.is_authenticated:
            session_tenant = request.session.get(SESSION_TENANT_KEY)
            membership = membership_get(user=request.user, tenant=tenant)
            if membership is None or session_tenant != tenant.pk:
                logout(request)
                return HttpResponseForbidden(
                    render_to_string("errors/not_a_member.html", {"tenant": tenant}, request=request)
                )
            request.membership = membership
        return self.get_response(request)
