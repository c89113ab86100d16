"""Public-schema billing models. Money is Decimal everywhere."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
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
    # The platform fee on requests served with a tenant's own provider key (BYOK), which the provider bills
    # to the tenant: docs/BILLING.md. Database defaults too, for writers of the previous release.
    byok_fee_per_1k_tokens = models.DecimalField(
        max_digits=12,
        decimal_places=8,
        default=Decimal(0),
        db_default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
        help_text="BYOK fee per 1,000 tokens (input and output) of a request on the tenant's own key",
    )
    byok_fee_per_request = models.DecimalField(
        max_digits=12,
        decimal_places=8,
        default=Decimal(0),
        db_default=Decimal(0),
        validators=[MinValueValidator(Decimal(0))],
        help_text="BYOK fee per request on the tenant's own key",
    )
    included_amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("0.00"),
        help_text="Usage included in the base fee, in currency (prorated; docs/BILLING.md)",
    )
    included_tokens = models.PositiveBigIntegerField(
        default=0, help_text="Tokens included in the base fee (prorated; docs/BILLING.md)"
    )
    minimum_monthly_charge = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("0.00"),
        help_text="An invoice below this is topped up to it (prorated)",
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
            models.CheckConstraint(
                condition=models.Q(byok_fee_per_1k_tokens__gte=0, byok_fee_per_request__gte=0),
                name="plan_byok_fees_not_negative",
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


class PlanModelPrice(models.Model):
    """A plan's own price for one catalogue model: an explicit price per 1M tokens, or its own markup.

    Models without a row are charged the provider's price plus the plan's `markup_percent`.
    """

    class Rule(models.TextChoices):
        MARKUP = "markup", "Markup over provider cost"
        FIXED = "fixed", "Fixed price per 1M tokens"

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="model_prices")
    model_name = models.CharField(max_length=200, help_text="Catalogue model name")
    rule = models.CharField(max_length=8, choices=Rule.choices, default=Rule.MARKUP)
    markup_percent = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    input_price_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    output_price_per_mtok = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plan", "model_name"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "model_name"], name="plan_model_price_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id} {self.model_name} {self.rule}"


class PlanAssignment(models.Model):
    """A tenant is on `plan` from `starts_at` until the next assignment's start: the plan history that
    prorates base fees, allowances and minimums (billing.rating)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="plan_assignments")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="assignments")
    starts_at = models.DateTimeField()

    class Meta:
        ordering = ["tenant", "starts_at"]
        indexes = [models.Index(fields=["tenant", "starts_at"], name="plan_assignment_tenant_start")]

    def __str__(self) -> str:
        return f"{self.tenant_id} on {self.plan_id} from {self.starts_at:%Y-%m-%d %H:%M}"


class UsageRollup(models.Model):
    """The ledger (each tenant's RequestRecords) summed per tenant, UTC day, model, provider, cache status and
    unit prices. A day's rows are replaced as a whole from the ledger (billing.rollups): idempotent."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="usage_rollups")
    day = models.DateField()
    model = models.CharField(max_length=200)
    provider = models.CharField(max_length=50)
    cache_status = models.CharField(max_length=16)
    unit_input_price = models.DecimalField(max_digits=16, decimal_places=8, help_text="Charged per 1M")
    unit_output_price = models.DecimalField(max_digits=16, decimal_places=8, help_text="Charged per 1M")
    unit_request_price = models.DecimalField(
        max_digits=16, decimal_places=8, default=0, db_default=0, help_text="Charged per request"
    )
    requests = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    provider_cost = models.DecimalField(max_digits=20, decimal_places=8, default=Decimal(0))
    price = models.DecimalField(
        max_digits=20, decimal_places=8, default=Decimal(0), help_text="Sum of the records' prices"
    )
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["tenant", "day", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "tenant",
                    "day",
                    "model",
                    "provider",
                    "cache_status",
                    "unit_input_price",
                    "unit_output_price",
                    "unit_request_price",
                ],
                name="usage_rollup_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day} {self.model} {self.cache_status}"


class RollupCursor(models.Model):
    """How far the periodic rollup has read a tenant's ledger (by the records' `recorded_at`)."""

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="rollup_cursor")
    recorded_upto = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.tenant_id} up to {self.recorded_upto}"


class StripeCustomer(models.Model):
    """The Stripe customer of a tenant (created lazily by the first invoice run, or by `billing_run`)."""

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="stripe_customer")
    customer_id = models.CharField(max_length=64, unique=True)
    subscription_id = models.CharField(
        max_length=64, blank=True, help_text="Only with STRIPE_INVOICE_NEEDS_SUBSCRIPTION (localstripe)"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Deleted in Stripe (customer.deleted)")

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.customer_id}"


class InvoiceRun(models.Model):
    """One invoice run for a period: every tenant, or one. Progress is visible in the console."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    period = models.CharField(max_length=7, help_text="YYYY-MM (UTC)")
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, help_text="Empty: every tenant"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=20, default="console", help_text="console, command or schedule")
    tenants_total = models.PositiveIntegerField(default=0)
    tenants_done = models.PositiveIntegerField(default=0)
    tenants_failed = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"run {self.pk} {self.period} {self.status}"


class Invoice(models.Model):
    """Our mirror of one tenant's invoice for one period, with its lines and its Stripe ids.

    `status` follows Stripe's invoice statuses once the invoice is there; before that it says how far the
    run got (`pending`: lines not computed; `rated`: lines computed, being pushed). `empty`: nothing to bill.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RATED = "rated", "Rated"
        EMPTY = "empty", "Nothing to bill"
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        VOID = "void", "Void"
        UNCOLLECTIBLE = "uncollectible", "Uncollectible"

    uid = models.UUIDField(unique=True, help_text="Our id, in Stripe metadata and idempotency keys")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="invoices")
    period = models.CharField(max_length=7, help_text="YYYY-MM (UTC)")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    currency = models.CharField(max_length=3, default="usd")
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    stripe_invoice_id = models.CharField(max_length=64, blank=True)
    stripe_customer_id = models.CharField(max_length=64, blank=True)
    number = models.CharField(max_length=64, blank=True)
    hosted_invoice_url = models.URLField(max_length=500, blank=True)
    stripe_total_cents = models.BigIntegerField(null=True, blank=True)
    issued_at = models.DateTimeField(
        null=True, blank=True, help_text="Finalized (or created, without finalize)"
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    payment_failed_at = models.DateTimeField(null=True, blank=True)
    payment_failures = models.PositiveIntegerField(default=0)
    last_event_created = models.BigIntegerField(default=0, help_text="`created` of the last applied event")
    run = models.ForeignKey(InvoiceRun, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-period", "tenant"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "period"], name="invoice_one_per_tenant_period"),
        ]
        indexes = [models.Index(fields=["stripe_invoice_id"], name="invoice_stripe_id")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.period} {self.status}"

    @property
    def total_cents(self) -> int:
        return int(self.total * 100)


class InvoiceLine(models.Model):
    """One line of an invoice: what a person can check (quantities, unit prices) and what it amounts to."""

    class Kind(models.TextChoices):
        USAGE = "usage", "Usage"
        CACHE_HITS = "cache_hits", "Cache hits"
        BASE_FEE = "base_fee", "Base fee"
        ALLOWANCE = "allowance", "Included allowance"
        MINIMUM = "minimum", "Minimum charge"

    uid = models.UUIDField(unique=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    description = models.CharField(max_length=500)
    model = models.CharField(max_length=200, blank=True)
    requests = models.PositiveBigIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    unit_input_price = models.DecimalField(max_digits=16, decimal_places=8, null=True, blank=True)
    unit_output_price = models.DecimalField(max_digits=16, decimal_places=8, null=True, blank=True)
    unit_request_price = models.DecimalField(max_digits=16, decimal_places=8, null=True, blank=True)
    exact_amount = models.DecimalField(max_digits=24, decimal_places=14, help_text="Before rounding to cents")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    stripe_invoice_item_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id}#{self.position} {self.amount}"

    @property
    def amount_cents(self) -> int:
        return int(self.amount * 100)


class StripeEvent(models.Model):
    """Every Stripe webhook event received, once (its id is unique): re-deliveries are no-ops."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    created = models.BigIntegerField(help_text="The event's `created`, epoch seconds")
    object_id = models.CharField(max_length=100, blank=True)
    outcome = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"


class MeterEvent(models.Model):
    """Outbox of Stripe Billing Meter events (GATEHOUSE_BILLING_MODE=meters; docs/BILLING.md).

    One row per tenant, UTC day and sequence: the day's billed amount not yet reported. `identifier` is
    stable, so a retry is deduplicated by Stripe (within about 24 hours); rows are sent within Stripe's
    35-day window or marked expired.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        EXPIRED = "expired", "Expired"
        UNCERTAIN = "uncertain", "Outcome unknown past the dedup window"

    identifier = models.CharField(max_length=100, unique=True)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="meter_events")
    day = models.DateField()
    sequence = models.PositiveIntegerField(default=0)
    event_name = models.CharField(max_length=100)
    stripe_customer_id = models.CharField(max_length=64)
    value = models.BigIntegerField(help_text="In the meter's unit (GATEHOUSE_METER_UNIT)")
    timestamp = models.BigIntegerField(help_text="The event's time, epoch seconds")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant", "day", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "day", "sequence"], name="meter_event_sequence_unique"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="meter_event_due")]

    def __str__(self) -> str:
        return self.identifier
