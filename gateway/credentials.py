"""Tenants' own provider keys ("bring your own key"): stored encrypted, shown only by their last four
characters, used by the gateway for that tenant's calls to the endpoint.

Only endpoints the operator marks `"byok": true` in settings.GATEHOUSE_ENDPOINTS accept them (by default the
built-in `openai` and `anthropic`). A key stored while an endpoint accepted keys and kept after the operator
stopped it is ignored: never sent upstream, never makes that endpoint's models the tenant's own to pay.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django_tenants.utils import schema_context

from gateway.crypto import secret_decrypt, secret_encrypt
from gateway.invalidation import invalidate_publish
from gateway.models import ProviderCredential
from tenants.models import Tenant


@dataclass(frozen=True)
class CredentialView:
    endpoint: str
    last_four: str | None  # None: no key of the tenant's; the deployment's is used, if any
    accepted: bool = True  # False: the endpoint no longer takes tenants' keys, so this one is ignored


def endpoint_is_byok(endpoint: str) -> bool:
    """Whether tenants may use their own key for `endpoint` (its `"byok": true`; unknown endpoints: no)."""
    config = settings.GATEHOUSE_ENDPOINTS.get(endpoint)
    return config is not None and config.get("byok", False) is True


def byok_endpoints() -> list[str]:
    return sorted(name for name in settings.GATEHOUSE_ENDPOINTS if endpoint_is_byok(name))


def credential_list(*, tenant: Tenant) -> list[CredentialView]:
    """Every endpoint that takes tenants' keys, with the tenant's key if it has one, then keys it stored for
    endpoints that no longer take them (ignored, listed so that the tenant can see and remove them)."""
    with schema_context(tenant.schema_name):
        own = dict(ProviderCredential.objects.values_list("endpoint", "last_four"))
    accepted = byok_endpoints()
    ignored = sorted(set(own) - set(accepted))
    return [CredentialView(endpoint, own.get(endpoint)) for endpoint in accepted] + [
        CredentialView(endpoint, own[endpoint], accepted=False) for endpoint in ignored
    ]


def credential_set(*, tenant: Tenant, endpoint: str, api_key: str | None) -> None:
    """Store (or with None, remove) the tenant's key for `endpoint`.

    Raises ValidationError for an endpoint that does not take tenants' keys (a stored key of such an endpoint
    can still be removed) and for a value that does not look like a key."""
    with schema_context(tenant.schema_name), transaction.atomic():
        stored = ProviderCredential.objects.filter(endpoint=endpoint)
        if not endpoint_is_byok(endpoint):
            if api_key is not None and endpoint in settings.GATEHOUSE_ENDPOINTS:
                raise ValidationError(
                    f"{endpoint} does not accept your own keys: the operator has not enabled"
                    " bring-your-own-key for it."
                )
            if api_key is not None or not stored.exists():
                raise ValidationError(f"Unknown endpoint {endpoint!r}.")
        if api_key is None:
            stored.delete()
        else:
            key = api_key.strip()
            if len(key) < 8 or len(key) > 500 or any(ch.isspace() for ch in key):
                raise ValidationError("That does not look like an API key.")
            ProviderCredential.objects.update_or_create(
                endpoint=endpoint,
                defaults={"encrypted_api_key": secret_encrypt(key), "last_four": key[-4:]},
            )
        tenant_id = tenant.pk
        transaction.on_commit(lambda: invalidate_publish(f"tenant:{tenant_id}"))


def credentials_plain(schema: str) -> dict[str, str]:
    """endpoint -> plain key, for the gateway's process memory (never logged, never sent to clients).

    Only endpoints that take tenants' keys: a key left from before an endpoint stopped taking them is not
    used for calls and does not make requests count as the tenant's own (docs/GATEWAY.md)."""
    with schema_context(schema):
        rows = list(ProviderCredential.objects.values_list("endpoint", "encrypted_api_key"))
    return {endpoint: secret_decrypt(token) for endpoint, token in rows if endpoint_is_byok(endpoint)}
