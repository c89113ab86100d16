"""Typed access to django-tenants' schema switching on the default connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import connection

if TYPE_CHECKING:
    from tenants.models import Tenant


def schema_set_public() -> None:
    connection.set_schema_to_public()  # type: ignore[attr-defined]


def schema_set_tenant(tenant: Tenant) -> None:
    connection.set_tenant(tenant)  # type: ignore[attr-defined]


def schema_current() -> str:
    name: str = connection.schema_name  # type: ignore[attr-defined]
    return name
