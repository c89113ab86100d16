from __future__ import annotations

from django.urls import path

from dashboards.console import views

app_name = "console"

urlpatterns = [
    path("", views.tenant_index, name="tenants"),
    path("tenants/<slug:slug>/status/", views.tenant_set_status, name="tenant_status"),
]
