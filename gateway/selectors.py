"""Reads on the gateway's tenant-schema models (run inside the tenant's schema)."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from gateway.models import ApiKey


def api_key_active_count() -> int:
    return (
        ApiKey.objects.filter(revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .count()
    )
