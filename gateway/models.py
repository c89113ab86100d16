"""Tenant-schema models of the gateway: API keys and per-request usage records."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from pgvector.django import HnswIndex, VectorField


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
    # This key's own limits, inside the tenant's (empty: only the tenant's apply). See gateway.limits.
    rpm = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per minute")
    tpm = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens per minute")
    concurrency = models.PositiveIntegerField(null=True, blank=True, help_text="Requests in flight")
    monthly_budget = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    monthly_token_cap = models.PositiveBigIntegerField(null=True, blank=True)

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

    Written off the hot path by the usage consumer, idempotent on `request_id` (made by the gateway; the
    client's own id is only the `client_request_id` label). A record `recovered` from the last checkpoint of a
    process that died is replaced by the request's own event if that arrives later (gateway.metering.store).
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
    unit_input_price = models.DecimalField(
        max_digits=16, decimal_places=8, default=0, help_text="Charged per 1M input tokens"
    )
    unit_output_price = models.DecimalField(
        max_digits=16, decimal_places=8, default=0, help_text="Charged per 1M output tokens"
    )
    # A database default too: writers that predate the column (a web process of the previous release during
    # a rolling deploy, bench/billing_setup.py's COPY) still insert rows.
    unit_request_price = models.DecimalField(
        max_digits=16,
        decimal_places=8,
        default=0,
        db_default=0,
        help_text="Charged per request on top of its tokens (the BYOK per-request fee)",
    )
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    cache_status = models.CharField(max_length=16, choices=CacheStatus.choices, default=CacheStatus.MISS)
    http_status = models.PositiveSmallIntegerField(default=200)
    error_class = models.CharField(max_length=100, blank=True)
    stream = models.BooleanField(default=False)
    client_disconnected = models.BooleanField(default=False)
    cache_similarity = models.FloatField(null=True, blank=True, help_text="Cosine of a semantic hit")
    pii_counts = models.JSONField(
        default=dict, blank=True, help_text="Distinct values redacted per PII category (never the values)"
    )
    cache_saving = models.DecimalField(
        max_digits=16, decimal_places=8, default=0, help_text="Provider cost a cache hit avoided"
    )
    client_request_id = models.CharField(
        max_length=128, blank=True, help_text="The client's own x-request-id (a label, not an identity)"
    )
    recovered = models.BooleanField(
        default=False, help_text="Settled from the last checkpoint after its web process died"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["client_request_id"],
                condition=~models.Q(client_request_id=""),
                name="record_client_request_id",
            ),
        ]

    def __str__(self) -> str:
        return self.request_id


class RefusalCount(models.Model):
    """Requests of one API key refused inside a web process (its memory of an RPM refusal, of requests in
    flight, a suspended tenant...), counted per minute instead of one RequestRecord each, so that a flood
    costs no write per request. `count` is the cumulative count of one web process (`source`) for that
    minute, key and code: re-sending it is idempotent (the store keeps the larger), and the minute's total is
    the sum over sources."""

    minute = models.DateTimeField()
    api_key_prefix = models.CharField(max_length=16)
    code = models.CharField(max_length=40)
    http_status = models.PositiveSmallIntegerField()
    source = models.CharField(max_length=100, help_text="The web process that refused them")
    count = models.PositiveIntegerField()

    class Meta:
        ordering = ["-minute"]
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "api_key_prefix", "code", "source"], name="refusal_count_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.api_key_prefix} {self.code}: {self.count}"


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


class CacheSettings(models.Model):
    """This tenant's response-cache settings: one row (pk 1); without it, the deployment's defaults apply."""

    enabled = models.BooleanField(default=True)
    semantic = models.BooleanField(default=True, help_text="Also answer similar prompts, not only identical")
    threshold = models.FloatField(default=0.92, help_text="Minimum cosine similarity of a semantic hit")
    ttl_seconds = models.PositiveIntegerField(default=3600)
    max_entries = models.PositiveIntegerField(default=10_000)
    max_temperature = models.FloatField(
        default=1.0, help_text="Requests asking for a higher temperature are neither cached nor answered"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "cache settings"

    def __str__(self) -> str:
        return "cache settings"


class CacheEntry(models.Model):
    """One cached answer: the prompt it answered (normalised, redacted), its embedding, the response.

    `exact_key` hashes the scope and the prompt; `scope_key` only the scope (model or chain, conversation
    before the last user turn, sampling parameters, tools...): an entry answers only requests of its scope.
    """

    exact_key = models.CharField(max_length=64, unique=True)
    scope_key = models.CharField(max_length=64, db_index=True)
    prompt = models.TextField()
    embedding = VectorField(dimensions=384, null=True, blank=True)
    requested_model = models.CharField(max_length=200)
    served_model = models.CharField(max_length=200)
    body = models.JSONField(help_text="The answer as a chat.completion")
    chunks = models.JSONField(null=True, blank=True, help_text="The answer's stream chunks, to replay")
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    last_hit_at = models.DateTimeField(null=True, blank=True)
    hit_count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "cache entries"
        indexes = [
            HnswIndex(
                name="cacheentry_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]

    def __str__(self) -> str:
        return self.prompt[:60]


class PiiSettings(models.Model):
    """This tenant's PII policy: one row (pk 1) over the deployment defaults (gateway.pii.policy)."""

    actions = models.JSONField(default=dict, blank=True, help_text='Category -> "off", "redact" or "block"')
    restore = models.BooleanField(default=True, help_text="Put the originals back into answers")
    scan_answers = models.BooleanField(
        default=False, help_text="Also remove the redacted and blocked categories from answers"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "PII settings"

    def __str__(self) -> str:
        return "PII settings"


class TenantLimits(models.Model):
    """This tenant's own limits and budget: one row (pk 1); an empty field takes the plan's default.

    See gateway.limits: requests and tokens per minute, requests in flight, and a monthly spend and token
    budget (calendar month, UTC) with a soft alert threshold.
    """

    class ContextOverflow(models.TextChoices):
        REFUSE = "refuse", "Refuse (400 context_length_exceeded)"
        TRUNCATE = "truncate", "Drop the oldest turns until the prompt fits"

    rpm = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per minute")
    tpm = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens per minute")
    concurrency = models.PositiveIntegerField(null=True, blank=True, help_text="Requests in flight")
    monthly_budget = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    monthly_token_cap = models.PositiveBigIntegerField(null=True, blank=True)
    soft_percent = models.PositiveSmallIntegerField(
        default=80, help_text="Record an alert once a month when this percent of a budget is spent"
    )
    context_overflow = models.CharField(
        max_length=10, choices=ContextOverflow.choices, default=ContextOverflow.REFUSE
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "tenant limits"

    def __str__(self) -> str:
        return "tenant limits"
