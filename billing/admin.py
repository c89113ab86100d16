from __future__ import annotations

from django.contrib import admin

from billing.models import (
    Invoice,
    InvoiceLine,
    InvoiceRun,
    MeterEvent,
    Plan,
    PlanAssignment,
    PlanModelPrice,
    StripeCustomer,
    StripeEvent,
    UsageRollup,
)


class PlanModelPriceInline(admin.TabularInline[PlanModelPrice, Plan]):
    model = PlanModelPrice
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin[Plan]):
    list_display = [
        "name",
        "slug",
        "monthly_fee",
        "currency",
        "markup_percent",
        "byok_fee_per_1k_tokens",
        "byok_fee_per_request",
        "is_default",
        "is_public",
    ]
    inlines = [PlanModelPriceInline]


class InvoiceLineInline(admin.TabularInline[InvoiceLine, Invoice]):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "position",
        "kind",
        "description",
        "exact_amount",
        "amount",
        "stripe_invoice_item_id",
    )


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin[Invoice]):
    """Read-mostly: invoices are made by runs and updated by webhooks, not edited by hand."""

    list_display = [
        "tenant",
        "period",
        "status",
        "total",
        "currency",
        "number",
        "stripe_invoice_id",
        "issued_at",
    ]
    list_filter = ["status", "period"]
    search_fields = ["tenant__slug", "number", "stripe_invoice_id"]
    readonly_fields = [field.name for field in Invoice._meta.fields]
    inlines = [InvoiceLineInline]


@admin.register(InvoiceRun)
class InvoiceRunAdmin(admin.ModelAdmin[InvoiceRun]):
    list_display = [
        "pk",
        "period",
        "tenant",
        "trigger",
        "status",
        "tenants_done",
        "tenants_failed",
        "created_at",
    ]
    readonly_fields = [field.name for field in InvoiceRun._meta.fields]


@admin.register(MeterEvent)
class MeterEventAdmin(admin.ModelAdmin[MeterEvent]):
    """An operator resolves `uncertain` and `expired` rows here (docs/BILLING-METERS.md)."""

    list_display = ["identifier", "tenant", "day", "value", "status", "attempts", "sent_at", "last_error"]
    list_filter = ["status"]


admin.site.register(StripeEvent, list_display=["event_id", "type", "created", "outcome", "received_at"])
admin.site.register(StripeCustomer, list_display=["tenant", "customer_id", "created_at", "deleted_at"])
admin.site.register(PlanAssignment, list_display=["tenant", "plan", "starts_at"])
admin.site.register(UsageRollup, list_display=["tenant", "day", "model", "cache_status", "requests", "price"])
