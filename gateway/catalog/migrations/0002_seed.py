"""Seed the catalogue with current OpenAI and Anthropic models at their published list prices (USD per
million tokens, standard tier, as published by the providers at the time of writing; editable in the admin)
and the simulator's sim/* models."""

from decimal import Decimal as D

from django.db import migrations

# name, provider, endpoint, upstream model, $/M in, $/M out, context, max out, vision, tools, n
MODELS = [
    ("gpt-4o", "openai", "openai", "gpt-4o", D("2.50"), D("10.00"), 128_000, 16_384, True, True, True),
    ("gpt-4o-mini", "openai", "openai", "gpt-4o-mini", D("0.15"), D("0.60"), 128_000, 16_384, True, True, True),
    ("gpt-4.1", "openai", "openai", "gpt-4.1", D("2.00"), D("8.00"), 1_047_576, 32_768, True, True, True),
    ("gpt-4.1-mini", "openai", "openai", "gpt-4.1-mini", D("0.40"), D("1.60"), 1_047_576, 32_768, True, True, True),
    ("gpt-4.1-nano", "openai", "openai", "gpt-4.1-nano", D("0.10"), D("0.40"), 1_047_576, 32_768, True, True, True),
    ("o3", "openai", "openai", "o3", D("2.00"), D("8.00"), 200_000, 100_000, True, True, False),
    ("o4-mini", "openai", "openai", "o4-mini", D("1.10"), D("4.40"), 200_000, 100_000, True, True, False),
    ("gpt-5", "openai", "openai", "gpt-5", D("1.25"), D("10.00"), 400_000, 128_000, True, True, False),
    ("gpt-5-mini", "openai", "openai", "gpt-5-mini", D("0.25"), D("2.00"), 400_000, 128_000, True, True, False),
    ("gpt-5-nano", "openai", "openai", "gpt-5-nano", D("0.05"), D("0.40"), 400_000, 128_000, True, True, False),
    ("anthropic/claude-opus-4-1", "anthropic", "anthropic", "claude-opus-4-1", D("15.00"), D("75.00"),
     200_000, 32_000, True, True, False),
    ("anthropic/claude-sonnet-4-5", "anthropic", "anthropic", "claude-sonnet-4-5", D("3.00"), D("15.00"),
     200_000, 64_000, True, True, False),
    ("anthropic/claude-haiku-4-5", "anthropic", "anthropic", "claude-haiku-4-5", D("1.00"), D("5.00"),
     200_000, 64_000, True, True, False),
    ("anthropic/claude-3-5-haiku", "anthropic", "anthropic", "claude-3-5-haiku-latest", D("0.80"), D("4.00"),
     200_000, 8_192, True, True, False),
    ("sim/fast", "simulator", "simulator", "sim/fast", D("0.10"), D("0.40"), 16_000, 4_096, False, True, True),
    ("sim/smart", "simulator", "simulator", "sim/smart", D("2.00"), D("8.00"), 128_000, 16_384, False, True, True),
    ("sim/code", "simulator", "simulator", "sim/code", D("1.00"), D("4.00"), 64_000, 16_384, False, True, True),
    ("sim/vision", "simulator", "simulator", "sim/vision", D("0.50"), D("2.00"), 32_000, 4_096, True, True, True),
    ("sim/echo", "simulator", "simulator", "sim/echo", D("0.00"), D("0.00"), 1_000_000, 100_000, True, True, True),
]


def seed(apps, schema_editor):
    CatalogModel = apps.get_model("catalog", "CatalogModel")
    for name, provider, endpoint, upstream, price_in, price_out, context, max_out, vision, tools, n in MODELS:
        CatalogModel.objects.update_or_create(
            name=name,
            defaults={
                "provider": provider,
                "endpoint": endpoint,
                "upstream_model": upstream,
                "input_price_per_mtok": price_in,
                "output_price_per_mtok": price_out,
                "context_window": context,
                "max_output_tokens": max_out,
                "supports_vision": vision,
                "supports_tools": tools,
                "supports_n": n,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
