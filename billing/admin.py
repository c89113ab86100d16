from __future__ import annotations

from django.contrib import admin

from billing.models import Plan


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin[Plan]):
    list_display = ["name", "slug", "monthly_fee", "currency", "is_default", "is_public"]
