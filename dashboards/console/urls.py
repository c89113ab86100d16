from __future__ import annotations

from django.urls import path

from dashboards.console import billing, plans, views

app_name = "console"

urlpatterns = [
    path("", views.tenant_index, name="tenants"),
    path("tenants/<slug:slug>/status/", views.tenant_set_status, name="tenant_status"),
    path("tenants/<slug:slug>/limits/", views.tenant_limits, name="tenant_limits"),
    path("tenants/<slug:slug>/plan/", plans.tenant_plan_set, name="tenant_plan"),
    path("alerts/", views.alert_list, name="alerts"),
    path("billing/", billing.invoice_runs, name="billing"),
    path("billing/invoices/", billing.period_invoices, name="billing_invoices"),
    path("billing/failed/", billing.failed_invoices, name="billing_failed"),
    path("billing/margin/", billing.margins, name="billing_margins"),
    path("plans/", plans.plans, name="plans"),
    path("plans/new/", plans.plan_create, name="plan_create"),
    path("plans/<slug:slug>/", plans.plan_edit, name="plan_edit"),
]
