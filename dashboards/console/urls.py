from __future__ import annotations

from django.urls import path

from dashboards.console import views

app_name = "console"

urlpatterns = [
    path("", views.tenant_index, name="tenants"),
    path("tenants/<slug:slug>/status/", views.tenant_set_status, name="tenant_status"),
    path("tenants/<slug:slug>/limits/", views.tenant_limits, name="tenant_limits"),
    path("alerts/", views.alert_list, name="alerts"),
]
