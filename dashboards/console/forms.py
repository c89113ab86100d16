"""The console's billing forms: start an invoice run, filter a period's invoices, edit a plan and its
per-model prices."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.utils import timezone

from billing.models import Invoice, Plan, PlanModelPrice
from billing.periods import period_bounds, period_is_closed
from billing.plan_edit import model_price_check
from billing.selectors import NO_INVOICE
from tenants.models import Tenant

PRICE_FIELDS = ["markup_percent", "input_price_per_mtok", "output_price_per_mtok"]


def period_validate(value: str) -> None:
    period_bounds(value)  # raises ValidationError unless YYYY-MM


def period_field(**kwargs: Any) -> forms.CharField:
    """YYYY-MM (a month picker in browsers that have one)."""
    widget = forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM", "pattern": r"\d{4}-\d{2}"})
    return forms.CharField(max_length=7, widget=widget, validators=[period_validate], **kwargs)


def non_negative(form: forms.BaseForm) -> None:
    """Every Decimal field of `form` refuses negative amounts (in the browser too)."""
    for field in form.fields.values():
        if isinstance(field, forms.DecimalField):
            field.validators.append(MinValueValidator(Decimal(0)))
            field.widget.attrs["min"] = "0"


class InvoiceRunForm(forms.Form):
    period = period_field(label="Month (UTC)")
    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.exclude(schema_name="public").order_by("name"),
        to_field_name="slug",
        required=False,
        empty_label="All tenants",
    )

    def clean_period(self) -> str:
        period: str = self.cleaned_data["period"]
        if not period_is_closed(period, timezone.now()):
            raise ValidationError(f"{period} has not ended yet: a month is invoiced once it is over.")
        return period


class InvoiceFilterForm(forms.Form):
    period = period_field(label="Month (UTC)")
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), (NO_INVOICE, "No invoice yet"), *Invoice.Status.choices],
    )


class MarginForm(forms.Form):
    period = period_field(label="Month (UTC)")


class PlanForm(forms.ModelForm[Plan]):
    """A plan's own fields. The default flag is not a model field here: plan_save moves it from the previous
    default plan (the database allows only one)."""

    is_default = forms.BooleanField(required=False, label="Default plan of self-service sign-ups")

    class Meta:
        model = Plan
        fields = [
            "name",
            "slug",
            "monthly_fee",
            "currency",
            "markup_percent",
            "cache_hit_percent",
            "byok_fee_per_1k_tokens",
            "byok_fee_per_request",
            "included_amount",
            "included_tokens",
            "minimum_monthly_charge",
            "default_rpm",
            "default_tpm",
            "default_concurrency",
            "default_monthly_budget",
            "default_monthly_token_cap",
            "is_public",
        ]
        labels = {
            "monthly_fee": "Monthly fee",
            "currency": "Currency (ISO code)",
            "markup_percent": "Markup over provider cost (%)",
            "cache_hit_percent": "Price of a cache hit (% of the answer's price)",
            "byok_fee_per_1k_tokens": "BYOK fee per 1,000 tokens (requests on the tenant's own key)",
            "byok_fee_per_request": "BYOK fee per request (requests on the tenant's own key)",
            "included_amount": "Included usage, in the currency",
            "included_tokens": "Included tokens",
            "minimum_monthly_charge": "Minimum monthly charge",
            "default_rpm": "Default requests per minute",
            "default_tpm": "Default tokens per minute",
            "default_concurrency": "Default requests in flight",
            "default_monthly_budget": "Default monthly budget",
            "default_monthly_token_cap": "Default monthly token cap",
            "is_public": "Public plan",
        }

    field_order = [*Meta.fields, "is_default"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            del self.fields["slug"]  # tenants, URLs and Stripe metadata refer to it
            self.fields["is_default"].initial = self.instance.is_default
        non_negative(self)

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        if slug == "new":
            raise ValidationError("“new” is taken by the console's own page.")
        return slug

    def clean_currency(self) -> str:
        currency: str = self.cleaned_data["currency"].strip().lower()
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise ValidationError("A three-letter ISO currency code, such as usd or eur.")
        plan = self.instance
        if plan.pk and currency != plan.currency and (plan.tenants.exists() or plan.assignments.exists()):
            # Usage already rated, fees of the month and Stripe customers are in the old currency.
            raise ValidationError(
                f"Tenants are or were on this plan and billed in {plan.currency}: "
                f"create another plan for {currency}."
            )
        return currency


class PlanModelPriceForm(forms.ModelForm[PlanModelPrice]):
    """One catalogue model's own price in a plan: a markup of its own, or fixed prices per 1M tokens."""

    model_name = forms.ChoiceField(label="Model")

    class Meta:
        model = PlanModelPrice
        fields = ["model_name", "rule", *PRICE_FIELDS]
        labels = {
            "markup_percent": "Markup (%)",
            "input_price_per_mtok": "Input per 1M",
            "output_price_per_mtok": "Output per 1M",
        }

    def __init__(self, *args: Any, model_names: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = list(model_names)
        if self.instance.model_name and self.instance.model_name not in names:
            names.append(self.instance.model_name)  # no longer in the catalogue: keep it editable
        field = self.fields["model_name"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "—"), *((name, name) for name in names)]
        non_negative(self)
        for bound in self.fields.values():
            bound.widget.attrs.setdefault("aria-label", str(bound.label))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors or not data.get("model_name"):
            return data
        probe = PlanModelPrice(rule=data["rule"], **{name: data.get(name) for name in PRICE_FIELDS})
        try:
            model_price_check(probe)
        except ValidationError as invalid:
            self.add_error(None, invalid)
            return data
        data.update({name: getattr(probe, name) for name in PRICE_FIELDS})
        return data


PlanModelPriceFormSet = forms.inlineformset_factory(
    Plan, PlanModelPrice, form=PlanModelPriceForm, extra=2, can_delete=True
)
