from django.db import migrations


def assign_current_plans(apps, schema_editor):
    """Every existing tenant has been on its current plan since it was created."""
    Tenant = apps.get_model("tenants", "Tenant")
    PlanAssignment = apps.get_model("billing", "PlanAssignment")
    for tenant in Tenant.objects.all():
        if not PlanAssignment.objects.filter(tenant=tenant).exists():
            PlanAssignment.objects.create(tenant=tenant, plan_id=tenant.plan_id, starts_at=tenant.created_at)


class Migration(migrations.Migration):
    dependencies = [("billing", "0006_invoicing")]

    operations = [migrations.RunPython(assign_current_plans, migrations.RunPython.noop)]
