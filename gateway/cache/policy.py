"""A tenant's cache settings as the hot path holds them (loaded with the API key's principal)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True, slots=True)
class CachePolicy:
    enabled: bool
    semantic: bool
    threshold: float
    ttl_seconds: int
    max_entries: int
    max_temperature: float


def cache_policy_load() -> CachePolicy:
    """The current schema's settings (its CacheSettings row, else the deployment defaults). Reads only."""
    from gateway.models import CacheSettings

    row = CacheSettings.objects.filter(pk=1).first()
    values = settings.GATEHOUSE_CACHE_DEFAULTS
    if row is not None:
        values = {name: getattr(row, name) for name in values}
    return CachePolicy(
        enabled=bool(values["enabled"]),
        semantic=bool(values["semantic"]),
        threshold=float(values["threshold"]),
        ttl_seconds=int(values["ttl_seconds"]),
        max_entries=int(values["max_entries"]),
        max_temperature=float(values["max_temperature"]),
    )
