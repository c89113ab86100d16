# pgvector, created once in the public schema from a shared app, before any tenant table uses it
# (created from a tenant migration it would land in that tenant's schema: STACK-NOTES §1c).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [
        migrations.RunSQL(
            "CREATE EXTENSION IF NOT EXISTS vector SCHEMA public",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
