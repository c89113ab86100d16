from __future__ import annotations

from django.urls import path

from dashboards.portal import billing, views

app_name = "portal"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("requests/", views.request_list, name="requests"),
    path("keys/", views.api_key_list, name="api_keys"),
    path("keys/new/", views.api_key_create_view, name="api_key_create"),
    path("keys/<int:key_id>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
    path("members/", views.member_list, name="members"),
    path("routing/", views.routing, name="routing"),
    path("provider-keys/", views.provider_keys, name="provider_keys"),
    path("cache/", views.cache, name="cache"),
    path("pii/", views.pii, name="pii"),
    path("limits/", views.limits, name="limits"),
    path("billing/", billing.billing, name="billing"),
    path("billing/invoices/<uuid:uid>/", billing.invoice_detail, name="invoice"),
]
