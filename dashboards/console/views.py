"""The operator console (public host, staff only): every tenant, with suspend and reactivate and its plan,
each tenant's limits (which an operator may set above the plan), and every tenant's budget alerts. Billing
and plans have pages of their own (dashboards.console.billing, dashboards.console.plans)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from billing.selectors import plan_list
from dashboards.portal.forms import TenantLimitsForm
from dashboards.portal.limits import alert_rows, limits_overview
from tenants.models import Tenant
from tenants.selectors import tenant_list
from tenants.services import tenant_portal_url, tenant_reactivate, tenant_suspend


@staff_member_required
def tenant_index(request: HttpRequest) -> HttpResponse:
    tenants = tenant_list().annotate(member_count=Count("memberships"))
    rows = [{"tenant": t, "portal_url": tenant_portal_url(t)} for t in tenants]
    return render(request, "console/tenants.html", {"rows": rows, "plans": list(plan_list())})


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


@staff_member_required
def tenant_limits(request: HttpRequest, slug: str) -> HttpResponse:
    """One tenant's limits, this month's spend and its alerts; an operator may set limits above the plan."""
    tenant = get_object_or_404(Tenant.objects.select_related("plan"), slug=slug)
    overview = limits_overview(tenant=tenant)
    form = TenantLimitsForm.of(overview)
    status = 200
    if request.method == "POST":
        form = TenantLimitsForm.of(overview, request.POST)
        if form.save(tenant=tenant, above_plan=True):
            messages.success(request, f"Limits of {tenant.name} saved.")
            return redirect("console:tenant_limits", slug=tenant.slug)
        status = 400
    return render(request, "console/tenant_limits.html", {"overview": overview, "form": form}, status=status)


@staff_member_required
def alert_list(request: HttpRequest) -> HttpResponse:
    """Every tenant's budget alerts, newest first."""
    return render(request, "console/alerts.html", {"alerts": alert_rows(tenant=None)})
