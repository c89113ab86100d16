"""URLs of a tenant's host (<slug>.localhost): the self-service portal."""

from __future__ import annotations

from django.urls import include, path

from dashboards.portal import urls as portal_urls
from tenants import urls_tenant as account_urls
from tenants.views import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include(account_urls)),
    path("", include(portal_urls)),
]
