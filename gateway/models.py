"""Tenant-schema models of the gateway: API keys and per-request usage records."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    """An API key of this tenant. Only a keyed hash of the secret is stored; the full key is shown once."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    allowed_models = ArrayField(
        models.CharField(max_length=200), default=list, blank=True, help_text="Empty: every model"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def status(self) -> ApiKey.Status:
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return self.Status.EXPIRED
        return self.Status.ACTIVE

    @property
    def display_prefix(self) -> str:
        return f"gate_{self.prefix}_…"


class RequestRecord(models.Model):
    """One inference request, as metered: the ledger that billing and dashboards read.

    Written off the hot path by the usage consumer, idempotent on `request_id`.
    """

    class CacheStatus(models.TextChoices):
        MISS = "miss", "Miss"
        HIT_EXACT = "hit-exact", "Exact hit"
        HIT_SEMANTIC = "hit-semantic", "Semantic hit"

    request_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    recorded_at = models.DateTimeField(default=timezone.now)
    api_key_prefix = models.CharField(max_length=16, blank=True)
    requested_model = models.CharField(max_length=200)
    served_model = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=50, blank=True)
    task_type = models.CharField(max_length=20, blank=True)
    attempts = models.JSONField(default=list, blank=True)
    fallback_count = models.PositiveSmallIntegerField(default=0)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    tokens_estimated = models.BooleanField(default=False)
    provider_cost = models.DecimalField(max_digits=16, decimal_places=8, default=0)
    price = models.DecimalField(max_digits=16, decimal_places=8, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    cache_status = models.CharField(max_length=16, choices=CacheStatus.choices, default=CacheStatus.MISS)
    http_status = models.PositiveSmallIntegerField(default=200)
    error_class = models.CharField(max_length=100, blank=True)
    stream = models.BooleanField(default=False)
    client_disconnected = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.request_id


class FallbackChain(models.Model):
    """This tenant's own fallback chain for one task type, replacing the deployment default."""

    class TaskType(models.TextChoices):
        SIMPLE = "simple", "Simple"
        REASONING = "reasoning", "Reasoning"
        CODE = "code", "Code"
        VISION = "vision", "Vision"

    task_type = models.CharField(max_length=20, choices=TaskType.choices, unique=True)
    model_names = ArrayField(models.CharField(max_length=200), help_text="Catalogue model names, in order")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.task_type}: {' > '.join(self.model_names)}"


class ProviderCredential(models.Model):
    """This tenant's own key for one upstream endpoint ("bring your own key"), encrypted at rest.

    Requests of this tenant to that endpoint's models use it instead of the deployment's key.
    """

    endpoint = models.CharField(max_length=50, unique=True, help_text="Key of settings.GATEHOUSE_ENDPOINTS")
    encrypted_api_key = models.TextField()
    last_four = models.CharField(max_length=4)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.endpoint} (…{self.last_four})"
