"""The model catalogue (public schema): what can be called, where, at what provider price."""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from gateway.routing import ModelInfo


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

    def info(self) -> ModelInfo:
        """The hot path's snapshot of this entry."""
        return ModelInfo(
            name=self.name,
            provider=self.provider,
            endpoint=self.endpoint,
            upstream_model=self.upstream_model,
            input_price_per_mtok=self.input_price_per_mtok,
            output_price_per_mtok=self.output_price_per_mtok,
            context_window=self.context_window,
            max_output_tokens=self.max_output_tokens,
            supports_vision=self.supports_vision,
            supports_tools=self.supports_tools,
            supports_n=self.supports_n,
        )


class CatalogPrice(models.Model):
    """The dated price history of a catalogue model: a row per price in force from `effective_from`.

    Written whenever a model's prices change (gateway.catalog.signals); each request's provider cost is taken
    from the price in force when it arrived and kept in its RequestRecord, so old usage stays billed at old
    prices. `price_at` answers which price applied at a given moment (reconciliation, the console).
    """

    model = models.ForeignKey(CatalogModel, on_delete=models.CASCADE, related_name="prices")
    input_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    output_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    effective_from = models.DateTimeField()

    class Meta:
        ordering = ["model", "-effective_from"]
        indexes = [models.Index(fields=["model", "effective_from"], name="catalog_price_model_from")]

    def __str__(self) -> str:
        return f"{self.model_id} from {self.effective_from:%Y-%m-%d %H:%M}"
