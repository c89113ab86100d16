from decimal import Decimal

from django.db import migrations

PLANS = [
    # slug, name, monthly fee, rpm, tpm, concurrency, default
    ("free", "Free", Decimal("0.00"), 60, 40_000, 5, True),
    ("starter", "Starter", Decimal("49.00"), 600, 400_000, 50, False),
    ("scale", "Scale", Decimal("499.00"), 6_000, 4_000_000, 200, False),
]


def create_plans(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for slug, name, fee, rpm, tpm, concurrency, default in PLANS:
        Plan.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "monthly_fee": fee,
                "default_rpm": rpm,
                "default_tpm": tpm,
                "default_concurrency": concurrency,
                "is_default": default,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(create_plans, migrations.RunPython.noop)]
