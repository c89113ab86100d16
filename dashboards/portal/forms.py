from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from dashboards.portal.limits import LimitsOverview, limit_display
from gateway.cache.manage import LIMITS as CACHE_LIMITS
from gateway.limits.manage import limits_set
from gateway.limits.policy import LIMIT_FIELDS, Limits, plan_limits
from gateway.models import ApiKey, TenantLimits
from tenants.models import Tenant


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, initial="API key")
    expires_in_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        label="Expires in (days)",
        help_text="Leave empty for a key that does not expire.",
    )
    allowed_models = forms.CharField(
        required=False,
        max_length=2000,
        label="Allowed models",
        help_text="Comma-separated model names or aliases; empty allows every model.",
    )

    def clean_allowed_models(self) -> list[str]:
        raw: str = self.cleaned_data["allowed_models"]
        models = [item.strip() for item in raw.replace("\n", ",").split(",") if item.strip()]
        for model in models:
            if len(model) > 200 or any(ch.isspace() for ch in model):
                raise forms.ValidationError(f"“{model[:50]}” is not a model name.")
        return models


class CacheSettingsForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Answer repeated requests from the cache")
    semantic = forms.BooleanField(required=False, label="Also answer similar (not only identical) prompts")
    threshold = forms.FloatField(
        min_value=CACHE_LIMITS["threshold"][0],
        max_value=CACHE_LIMITS["threshold"][1],
        label="Similarity threshold",
        help_text="Cosine similarity a similar prompt needs. Higher: fewer, safer hits.",
    )
    ttl_seconds = forms.IntegerField(
        min_value=int(CACHE_LIMITS["ttl_seconds"][0]),
        max_value=int(CACHE_LIMITS["ttl_seconds"][1]),
        label="Time to live (seconds)",
    )
    max_entries = forms.IntegerField(
        min_value=int(CACHE_LIMITS["max_entries"][0]),
        max_value=int(CACHE_LIMITS["max_entries"][1]),
        label="Maximum entries",
    )
    max_temperature = forms.FloatField(
        min_value=CACHE_LIMITS["max_temperature"][0],
        max_value=CACHE_LIMITS["max_temperature"][1],
        label="Highest temperature cached",
        help_text="Requests asking for a higher temperature always go to a model.",
    )


def pii_policy_form_class() -> type[forms.Form]:
    """A form with one action per PII category, and the restore and answer-scanning switches."""
    from gateway.pii.detect import CATEGORIES
    from gateway.pii.policy import ACTIONS

    labels = {
        "secret": "Secrets (API keys, tokens, private keys)",
        "email": "E-mail addresses",
        "iban": "IBANs",
        "card": "Payment card numbers",
        "ssn": "US social security numbers",
        "ip": "IP addresses",
        "phone": "Phone numbers",
    }
    fields: dict[str, forms.Field] = {
        category: forms.ChoiceField(choices=[(a, a) for a in ACTIONS], label=labels[category])
        for category in CATEGORIES
    }
    fields["restore"] = forms.BooleanField(required=False, label="Put the originals back into answers")
    fields["scan_answers"] = forms.BooleanField(
        required=False,
        label="Also remove these categories from answers (the model's own output)",
    )
    return type("PiiPolicyForm", (forms.Form,), fields)


INT_MAX = 2_147_483_647  # PositiveIntegerField
BIGINT_MAX = 9_223_372_036_854_775_807  # PositiveBigIntegerField


class LimitFieldsForm(forms.Form):
    """The five limits of a tenant or an API key; an empty field sends None. `initial` holds the current
    values: only changed ones are sent, so a value an operator set above the plan survives an owner's
    saving of another field."""

    rpm = forms.IntegerField(required=False, min_value=0, max_value=INT_MAX, label="Requests per minute")
    tpm = forms.IntegerField(required=False, min_value=0, max_value=INT_MAX, label="Tokens per minute")
    concurrency = forms.IntegerField(
        required=False, min_value=0, max_value=INT_MAX, label="Requests in flight"
    )
    monthly_budget = forms.DecimalField(
        required=False, min_value=Decimal(0), max_digits=12, decimal_places=2, label="Monthly budget"
    )
    monthly_token_cap = forms.IntegerField(
        required=False, min_value=0, max_value=BIGINT_MAX, label="Monthly token cap"
    )

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["monthly_budget"].label = f"Monthly budget ({currency})"

    def changed_limits(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in LIMIT_FIELDS if name in self.changed_data}

    def _set(self, **arguments: Any) -> bool:
        """Call limits_set; its refusal (e.g. a value above the plan) becomes an error of this form."""
        try:
            limits_set(**arguments)
        except ValidationError as invalid:
            self.add_error(None, invalid)
            return False
        return True


class TenantLimitsForm(LimitFieldsForm):
    soft_percent = forms.IntegerField(
        min_value=1,
        max_value=100,
        label="Alert threshold (%)",
        help_text="Record a budget alert once a month when this percent of a budget is used.",
    )
    context_overflow = forms.ChoiceField(
        choices=TenantLimits.ContextOverflow.choices, label="A prompt longer than the model's context"
    )

    def __init__(self, *args: Any, plan: Limits, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, currency=currency, **kwargs)
        for name in LIMIT_FIELDS:
            default = getattr(plan, name)
            shown = limit_display(name, default, currency)
            self.fields[name].help_text = f"Empty: the plan's default ({shown})."
            self.fields[name].widget.attrs["placeholder"] = "no limit" if default is None else str(default)

    @classmethod
    def of(cls, overview: LimitsOverview, data: QueryDict | None = None) -> TenantLimitsForm:
        """The form over the tenant's own current values."""
        plan = plan_limits(overview.tenant.plan)
        return cls(data, initial=overview.own, plan=plan, currency=overview.currency)

    def save(self, *, tenant: Tenant, above_plan: bool = False) -> bool:
        """Set the tenant's limits; False (and errors on the form) when they are refused."""
        if not self.is_valid():
            return False
        return self._set(
            tenant=tenant,
            above_plan=above_plan,
            soft_percent=self.cleaned_data["soft_percent"],
            context_overflow=self.cleaned_data["context_overflow"],
            **self.changed_limits(),
        )


class KeyLimitsForm(LimitFieldsForm):
    """One API key's own limits; the key's current ones are the initial data (of the posted key, if any)."""

    key = forms.ChoiceField(label="API key")

    field_order = ["key", *LIMIT_FIELDS]

    def __init__(
        self, data: QueryDict | None = None, *, keys: list[ApiKey], selected: str | None, currency: str
    ) -> None:
        by_prefix = {key.prefix: key for key in keys}
        if data is not None:
            chosen = by_prefix.get(data.get("key") or "")
        else:
            chosen = by_prefix.get(selected or "") or (keys[0] if keys else None)
        initial = {"key": chosen.prefix, **{n: getattr(chosen, n) for n in LIMIT_FIELDS}} if chosen else {}
        super().__init__(data, initial=initial, currency=currency)
        choices = [(k.prefix, f"{k.name} ({k.display_prefix})") for k in keys]
        self.fields["key"] = forms.ChoiceField(
            choices=choices,
            label="API key",
            help_text="The fields show this key's limits; pick another key with its Edit link above.",
        )
        for name in LIMIT_FIELDS:
            self.fields[name].help_text = "Empty: none of its own (the tenant's limits apply)."

    @classmethod
    def of(
        cls, overview: LimitsOverview, data: QueryDict | None = None, selected: str | None = None
    ) -> KeyLimitsForm:
        keys = [row.key for row in overview.keys]
        return cls(data, keys=keys, selected=selected, currency=overview.currency)

    def save(self, *, tenant: Tenant) -> bool:
        """Set the chosen key's own limits; False (and errors on the form) when they are refused."""
        if not self.is_valid():
            return False
        changed = self.changed_limits()
        if not changed:
            return True  # limits_set would save the whole key (update_fields=None): nothing to do
        return self._set(tenant=tenant, key_prefix=self.cleaned_data["key"], **changed)
