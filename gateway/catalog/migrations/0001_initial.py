from decimal import Decimal

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="CatalogModel",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(help_text="What clients put in `model`", max_length=200, unique=True)),
                (
                    "provider",
                    models.CharField(
                        choices=[
                            ("openai", "OpenAI"),
                            ("anthropic", "Anthropic"),
                            ("openai_compatible", "OpenAI-compatible server"),
                            ("simulator", "Provider simulator (development)"),
                        ],
                        max_length=30,
                    ),
                ),
                ("endpoint", models.CharField(help_text="Key of settings.GATEHOUSE_ENDPOINTS", max_length=50)),
                ("upstream_model", models.CharField(max_length=200)),
                ("input_price_per_mtok", models.DecimalField(decimal_places=6, default=Decimal("0"), max_digits=12)),
                ("output_price_per_mtok", models.DecimalField(decimal_places=6, default=Decimal("0"), max_digits=12)),
                ("context_window", models.PositiveIntegerField(default=128000)),
                ("max_output_tokens", models.PositiveIntegerField(default=16384)),
                ("supports_vision", models.BooleanField(default=False)),
                ("supports_tools", models.BooleanField(default=True)),
                ("supports_n", models.BooleanField(default=True, help_text="Can return several choices (`n` > 1)")),
                ("is_active", models.BooleanField(default=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"ordering": ["name"]},
        ),
    ]
