"""Public-schema billing models. Money is Decimal everywhere."""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class Plan(models.Model):
    """A price plan a tenant subscribes to; it also sets the tenant's default limits."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    monthly_fee = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    currency = models.CharField(max_length=3, default="usd")
    default_rpm = models.PositiveIntegerField(default=600, help_text="Requests per minute")
    default_tpm = models.PositiveIntegerField(default=200_000, help_text="Tokens per minute")
    default_concurrency = models.PositiveIntegerField(default=50)
    default_monthly_budget = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="Empty: no budget cap"
    )
    default_monthly_token_cap = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Tokens per calendar month; empty: no cap"
    )
    markup_percent = models.DecimalField(
        max_digits=7,
        decimal_places=2,
        default=Decimal("20.00"),
        help_text="Price charged = provider cost * (1 + markup/100)",
    )
    cache_hit_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("10.00"),
        help_text="Price of a cache hit, as a percent of the price of the same answer from a provider",
    )
    is_default = models.BooleanField(default=False, help_text="Plan given to self-service sign-ups")
    is_public = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["monthly_fee", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="plan_single_default",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class BudgetAlert(models.Model):
    """A budget of a tenant (or of one of its API keys) crossed its soft threshold: once per month and kind.

    Written by the alert drain (gateway.limits.alerts) from what the limiter reported; shown in the portal
    and the console, and passed to the hooks of settings.GATEHOUSE_BUDGET_ALERT_HOOKS.
    """

    class Kind(models.TextChoices):
        SPEND = "spend", "Spend"
        TOKENS = "tokens", "Tokens"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="budget_alerts")
    api_key_prefix = models.CharField(max_length=16, blank=True, help_text="Empty: the tenant's budget")
    period = models.CharField(max_length=7, help_text="YYYY-MM (UTC)")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    used = models.DecimalField(max_digits=20, decimal_places=8)
    cap = models.DecimalField(max_digits=20, decimal_places=8)
    threshold_percent = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "api_key_prefix", "period", "kind"], name="budget_alert_once_per_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.api_key_prefix or 'tenant'} {self.period} {self.kind}"
