"""The tenant's self-service portal: overview, API keys, members, routing, cache, PII, limits."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from dashboards.portal.access import key_manager_required, member_required
from dashboards.portal.forms import (
    ApiKeyCreateForm,
    CacheSettingsForm,
    KeyLimitsForm,
    TenantLimitsForm,
    pii_policy_form_class,
)
from dashboards.portal.limits import limits_overview
from dashboards.portal.selectors import refusals_total, request_search, usage_summary
from gateway.cache.manage import cache_clear, cache_settings_get, cache_settings_set, cache_stats
from gateway.catalog.models import CatalogModel
from gateway.chains import chain_set, chains_effective
from gateway.credentials import credential_list, credential_set
from gateway.keys import api_key_create, api_key_revoke
from gateway.models import ApiKey
from gateway.pii.manage import pii_policy_get, pii_settings_set
from gateway.selectors import api_key_active_count
from tenants.http import PortalRequest
from tenants.selectors import membership_list_for_tenant


@member_required
def overview(request: PortalRequest) -> HttpResponse:
    context = {
        "usage": usage_summary(days=30),
        "active_keys": api_key_active_count(),
    }
    return render(request, "portal/overview.html", context)


@member_required
def request_list(request: PortalRequest) -> HttpResponse:
    """The latest requests, or the one(s) with a given request id (the gateway's, or the client's own)."""
    query = request.GET.get("q", "")[:500]
    context = {
        "query": query,
        "records": list(request_search(query)),
        "refused": refusals_total(days=30),
    }
    return render(request, "portal/requests.html", context)


@member_required
def api_key_list(request: PortalRequest) -> HttpResponse:
    return render(request, "portal/api_keys.html", {"keys": ApiKey.objects.all(), "form": ApiKeyCreateForm()})


@never_cache
@key_manager_required
@require_POST
def api_key_create_view(request: PortalRequest) -> HttpResponse:
    tenant = request.tenant
    form = ApiKeyCreateForm(request.POST)
    if not tenant.is_active:
        form.add_error(None, "This organisation is suspended: new API keys cannot be created.")
    if not form.is_valid():
        return render(
            request,
            "portal/api_keys.html",
            {"keys": ApiKey.objects.all(), "form": form},
            status=400,
        )
    days = form.cleaned_data["expires_in_days"]
    created = api_key_create(
        tenant=tenant,
        name=form.cleaned_data["name"],
        expires_at=timezone.now() + timedelta(days=days) if days else None,
        allowed_models=form.cleaned_data["allowed_models"],
        created_by_id=request.user.pk,
    )
    # Rendered, not redirected: the full key exists only in this response, which nothing caches.
    return render(request, "portal/api_key_created.html", {"created": created})


@key_manager_required
@require_POST
def api_key_revoke_view(request: PortalRequest, key_id: int) -> HttpResponse:
    tenant = request.tenant
    try:
        api_key = api_key_revoke(tenant=tenant, api_key_id=key_id)
    except ApiKey.DoesNotExist:
        return render(request, "errors/404.html", status=404)
    messages.success(request, f"Key {api_key.display_prefix} revoked.")
    return redirect("portal:api_keys")


@member_required
def routing(request: PortalRequest) -> HttpResponse:
    """The tenant's fallback chains; key managers may override the default for each task type."""
    error = ""
    status = 200
    if request.method == "POST":
        if not request.membership.can_manage_keys:
            return render(request, "errors/404.html", status=403)
        task = request.POST.get("task_type", "")
        raw = request.POST.get("models", "")
        names = None if "reset" in request.POST else [m.strip() for m in raw.split(",") if m.strip()]
        try:
            chain_set(tenant=request.tenant, task_type=task, model_names=names)
        except ValidationError as invalid:
            error, status = " ".join(invalid.messages), 400
        else:
            messages.success(request, f"Chain for {task} saved.")
            return redirect("portal:routing")
    context = {
        "chains": chains_effective(tenant=request.tenant),
        "models": sorted(CatalogModel.objects.filter(is_active=True).values_list("name", flat=True)),
        "error": error,
    }
    return render(request, "portal/routing.html", context, status=status)


@member_required
def provider_keys(request: PortalRequest) -> HttpResponse:
    """The tenant's own provider keys (bring your own key); owners and admins may set them."""
    error, status = "", 200
    if request.method == "POST":
        if not request.membership.can_manage_account:
            return render(request, "errors/404.html", status=403)
        endpoint = request.POST.get("endpoint", "")
        key = None if "remove" in request.POST else request.POST.get("api_key", "")
        try:
            credential_set(tenant=request.tenant, endpoint=endpoint, api_key=key)
        except ValidationError as invalid:
            error, status = " ".join(invalid.messages), 400
        else:
            messages.success(request, f"Key for {endpoint} {'removed' if key is None else 'saved'}.")
            return redirect("portal:provider_keys")
    context = {
        "credentials": credential_list(tenant=request.tenant),
        "plan": request.tenant.plan,
        "error": error,
    }
    return render(request, "portal/provider_keys.html", context, status=status)


@member_required
def cache(request: PortalRequest) -> HttpResponse:
    """The tenant's response cache: what it saved, and its settings (key managers may change and clear it)."""
    current = cache_settings_get(tenant=request.tenant)
    form = CacheSettingsForm(initial={name: getattr(current, name) for name in CacheSettingsForm.base_fields})
    status = 200
    if request.method == "POST":
        if not request.membership.can_manage_keys:
            return render(request, "errors/404.html", status=403)
        if "clear" in request.POST:
            deleted = cache_clear(tenant=request.tenant)
            messages.success(request, f"Cache cleared ({deleted} entries).")
            return redirect("portal:cache")
        form = CacheSettingsForm(request.POST)
        if form.is_valid():
            cache_settings_set(tenant=request.tenant, **form.cleaned_data)
            messages.success(request, "Cache settings saved.")
            return redirect("portal:cache")
        status = 400
    context = {"form": form, "stats": cache_stats(tenant=request.tenant)}
    return render(request, "portal/cache.html", context, status=status)


@member_required
def pii(request: PortalRequest) -> HttpResponse:
    """The tenant's PII policy: per category off / redact / block; owners and admins may change it."""
    form_class = pii_policy_form_class()
    policy = pii_policy_get(tenant=request.tenant)
    form = form_class(
        initial={**policy.actions, "restore": policy.restore, "scan_answers": policy.scan_answers}
    )
    status = 200
    if request.method == "POST":
        if not request.membership.can_manage_account:
            return render(request, "errors/404.html", status=403)
        form = form_class(request.POST)
        if form.is_valid():
            data = dict(form.cleaned_data)
            restore = bool(data.pop("restore"))
            scan_answers = bool(data.pop("scan_answers"))
            pii_settings_set(tenant=request.tenant, actions=data, restore=restore, scan_answers=scan_answers)
            messages.success(request, "PII policy saved.")
            return redirect("portal:pii")
        status = 400
    return render(request, "portal/pii.html", {"form": form}, status=status)


@member_required
def member_list(request: PortalRequest) -> HttpResponse:
    tenant = request.tenant
    return render(request, "portal/members.html", {"members": membership_list_for_tenant(tenant=tenant)})


@member_required
def limits(request: PortalRequest) -> HttpResponse:
    """The tenant's limits next to the plan's, this month's spend and its budget alerts; owners and admins
    may change the limits (within the plan) and set API keys' own limits."""
    tenant = request.tenant
    overview = limits_overview(tenant=tenant)
    tenant_form = TenantLimitsForm.of(overview)
    key_form = KeyLimitsForm.of(overview, selected=request.GET.get("key"))
    status = 200
    if request.method == "POST":
        if not request.membership.can_manage_account:
            return render(request, "errors/404.html", status=403)
        if "key" in request.POST:
            key_form = KeyLimitsForm.of(overview, request.POST)
            if key_form.save(tenant=tenant):
                prefix = key_form.cleaned_data["key"]
                messages.success(request, f"Limits of key gate_{prefix}_… saved.")
                return redirect(f"{reverse('portal:limits')}?key={prefix}")
        else:
            tenant_form = TenantLimitsForm.of(overview, request.POST)
            if tenant_form.save(tenant=tenant):
                messages.success(request, "Limits saved.")
                return redirect("portal:limits")
        status = 400
    context = {"overview": overview, "form": tenant_form, "key_form": key_form}
    return render(request, "portal/limits.html", context, status=status)
