"""The model catalogue (public schema): what can be called, where, at what provider price."""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class CatalogModel(models.Model):
    """One model a request can name, and the deployment that serves it.

    `endpoint` names an entry of settings.GATEHOUSE_ENDPOINTS (base URL and credentials); `upstream_model` is
    the name sent to that endpoint. Prices are the provider's published prices per million tokens.
    """

    class Provider(models.TextChoices):
        OPENAI = "openai", "OpenAI"
        ANTHROPIC = "anthropic", "Anthropic"
        OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible server"
        SIMULATOR = "simulator", "Provider simulator (development)"

    name = models.CharField(max_length=200, unique=True, help_text="What clients put in `model`")
    provider = models.CharField(max_length=30, choices=Provider.choices)
    endpoint = models.CharField(max_length=50, help_text="Key of settings.GATEHOUSE_ENDPOINTS")
    upstream_model = models.CharField(max_length=200)
    input_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    output_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    context_window = models.PositiveIntegerField(default=128_000)
    max_output_tokens = models.PositiveIntegerField(default=16_384)
    supports_vision = models.BooleanField(default=False)
    supports_tools = models.BooleanField(default=True)
    supports_n = models.BooleanField(default=True, help_text="Can return several choices (`n` > 1)")
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
