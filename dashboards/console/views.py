"""The operator console (public host, staff only): every tenant, with suspend and reactivate."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tenants.models import Tenant
from tenants.selectors import tenant_list
from tenants.services import tenant_portal_url, tenant_reactivate, tenant_suspend


@staff_member_required
def tenant_index(request: HttpRequest) -> HttpResponse:
    tenants = tenant_list().annotate(member_count=Count("memberships"))
    rows = [{"tenant": t, "portal_url": tenant_portal_url(t)} for t in tenants]
    return render(request, "console/tenants.html", {"rows": rows})


@staff_member_required
@require_POST
def tenant_set_status(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = get_object_or_404(Tenant, slug=slug)
    action = request.POST.get("action")
    if action == "suspend":
        tenant_suspend(tenant=tenant, reason=request.POST.get("reason", "Suspended by an operator"))
        messages.success(request, f"{tenant.name} suspended.")
    elif action == "reactivate":
        tenant_reactivate(tenant=tenant)
        messages.success(request, f"{tenant.name} reactivated.")
    else:
        return HttpResponseBadRequest("action must be 'suspend' or 'reactivate'")
    return redirect("console:tenants")
