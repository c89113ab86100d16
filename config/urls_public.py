"""URLs of the public host: operator console, sign-up, admin, health (and the API, per gateway issue)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from billing.views import stripe_webhook
from dashboards.console import urls as console_urls
from tenants import urls_public as account_urls
from tenants.views import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("stripe/webhook", stripe_webhook, name="stripe-webhook"),
    path("console/", include(console_urls)),
    path("", include(account_urls)),
]
