"""The portal's Billing pages: this month's usage and invoice so far, the tenant's invoices and its plan.

Every member sees the page; the amounts (estimate, totals, prices, invoice lines and the links to Stripe's
invoice pages) only owners and admins (`Membership.can_manage_account`), the others see requests, tokens and
the invoices' status and dates."""

from __future__ import annotations

import uuid

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from billing.models import Invoice
from billing.periods import period_of
from billing.rollups import rollup_pending
from billing.selectors import (
    billing_suspended,
    invoice_get_for_tenant,
    invoice_list_for_tenant,
    invoices_unpaid,
    month_estimate,
    usage_by_model,
)
from dashboards.portal.access import account_manager_required, member_required
from tenants.http import PortalRequest


@member_required
def billing(request: PortalRequest) -> HttpResponse:
    tenant = request.tenant
    amounts = request.membership.can_manage_account
    now = timezone.now()
    period = period_of(now)
    rollup_pending(tenant)  # the month so far includes the latest requests
    suspended = billing_suspended(tenant)
    context = {
        "amounts": amounts,
        "period": period,
        "usage": usage_by_model(tenant=tenant, period=period),
        "estimate": month_estimate(tenant=tenant, now=now) if amounts else None,
        "invoices": invoice_list_for_tenant(tenant=tenant),
        "plan": tenant.plan,
        "prices": tenant.plan.model_prices.all() if amounts else [],
        "suspended": suspended,
        "unpaid": invoices_unpaid(tenant=tenant) if suspended and amounts else [],
    }
    return render(request, "portal/billing.html", context)


@account_manager_required
def invoice_detail(request: PortalRequest, uid: uuid.UUID) -> HttpResponse:
    try:
        invoice = invoice_get_for_tenant(tenant=request.tenant, uid=uid)
    except Invoice.DoesNotExist:
        return render(request, "errors/404.html", status=404)
    return render(request, "portal/invoice.html", {"invoice": invoice})
