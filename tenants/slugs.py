"""Rules for tenant slugs, which become host names (<slug>.localhost) and schema names (t_<slug>)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")

RESERVED_SLUGS = frozenset(
    {
        "admin",
        "api",
        "app",
        "assets",
        "billing",
        "cdn",
        "console",
        "dashboard",
        "default",
        "demo-admin",
        "docs",
        "extensions",
        "ftp",
        "gatehouse",
        "help",
        "information-schema",
        "internal",
        "localhost",
        "login",
        "mail",
        "media",
        "metrics",
        "pg",
        "portal",
        "public",
        "root",
        "signup",
        "smtp",
        "static",
        "status",
        "stripe",
        "support",
        "system",
        "test",
        "www",
    }
)


def slug_validate(slug: str) -> None:
    """Raise ValidationError unless `slug` can name a tenant's host and schema."""
    if not SLUG_RE.match(slug):
        raise ValidationError(
            "Use 3 to 40 characters: lowercase letters, digits and hyphens, starting with a letter "
            "and not ending with a hyphen.",
            code="invalid",
        )
    if "--" in slug:
        raise ValidationError("Use single hyphens only.", code="invalid")
    if slug in RESERVED_SLUGS or slug.startswith("pg-"):
        raise ValidationError(f"“{slug}” is reserved. Choose another name.", code="reserved")


def schema_name_for(slug: str) -> str:
    """The PostgreSQL schema of a tenant: prefixed so it never collides with `public` or `pg_*`."""
    return "t_" + slug.replace("-", "_")
