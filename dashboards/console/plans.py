"""The console's plan pages (staff only): every plan, a form to create or edit one with its per-model
prices, and moving a tenant to another plan."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from billing.models import Plan
from billing.plan_edit import plan_save
from billing.plans import tenant_plan_change
from billing.selectors import plan_list
from dashboards.console.forms import PlanForm, PlanModelPriceFormSet
from gateway.catalog.models import CatalogModel
from tenants.models import Tenant


@staff_member_required
def plans(request: HttpRequest) -> HttpResponse:
    return render(request, "console/plans.html", {"plans": plan_list()})


@staff_member_required
def plan_create(request: HttpRequest) -> HttpResponse:
    return _plan_form(request, Plan())


@staff_member_required
def plan_edit(request: HttpRequest, slug: str) -> HttpResponse:
    return _plan_form(request, get_object_or_404(Plan, slug=slug))


def _plan_form(request: HttpRequest, plan: Plan) -> HttpResponse:
    """The plan's fields and its per-model prices, validated together and saved together by plan_save."""
    data = request.POST if request.method == "POST" else None
    names = list(CatalogModel.objects.order_by("name").values_list("name", flat=True))
    form = PlanForm(data, instance=plan)
    prices = PlanModelPriceFormSet(data, instance=plan, form_kwargs={"model_names": names})
    if data is not None and form.is_valid() and prices.is_valid():
        try:
            saved = plan_save(
                plan=form.save(commit=False),
                is_default=form.cleaned_data["is_default"],
                prices=prices.save(commit=False),
                removed=prices.deleted_objects,
            )
        except ValidationError as invalid:
            form.add_error(None, invalid.messages)
        else:
            messages.success(request, f"Plan {saved.name} saved; gateways reload its prices.")
            return redirect("console:plan_edit", slug=saved.slug)
    context = {"form": form, "prices": prices, "plan": plan}
    return render(request, "console/plan_form.html", context, status=400 if data is not None else 200)


@staff_member_required
@require_POST
def tenant_plan_set(request: HttpRequest, slug: str) -> HttpResponse:
    """Move a tenant to another plan from now on (its invoice prorates the two)."""
    tenant = get_object_or_404(Tenant.objects.select_related("plan"), slug=slug)
    plan = Plan.objects.filter(slug=request.POST.get("plan", "")).first()
    if plan is None:
        return HttpResponseBadRequest("Unknown plan.")
    if plan.pk == tenant.plan_id:
        messages.info(request, f"{tenant.name} is already on the {plan.name} plan.")
        return redirect("console:tenants")
    try:
        tenant_plan_change(tenant=tenant, plan=plan)
    except ValidationError as error:  # e.g. a plan in another currency
        messages.error(request, f"{tenant.name} cannot move to the {plan.name} plan: {error.messages[0]}")
    else:
        messages.success(request, f"{tenant.name} is on the {plan.name} plan from now on.")
    return redirect("console:tenants")
