from __future__ import annotations

from django import forms

from gateway.cache.manage import LIMITS as CACHE_LIMITS


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
    """A form with one action per PII category, and the restore switch."""
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
    return type("PiiPolicyForm", (forms.Form,), fields)
