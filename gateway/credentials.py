"""Tenants' own provider keys ("bring your own key"): stored encrypted, shown only by their last four
characters, used by the gateway for that tenant's calls to the endpoint."""

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

NOT_BYOK = frozenset({"simulator"})


@dataclass(frozen=True)
class CredentialView:
    endpoint: str
    last_four: str | None  # None: no key of the tenant's; the deployment's is used, if any


def byok_endpoints() -> list[str]:
    return sorted(name for name in settings.GATEHOUSE_ENDPOINTS if name not in NOT_BYOK)


def credential_list(*, tenant: Tenant) -> list[CredentialView]:
    with schema_context(tenant.schema_name):
        own = dict(ProviderCredential.objects.values_list("endpoint", "last_four"))
    return [CredentialView(endpoint, own.get(endpoint)) for endpoint in byok_endpoints()]


def credential_set(*, tenant: Tenant, endpoint: str, api_key: str | None) -> None:
    """Store (or with None, remove) the tenant's key for `endpoint`. Raises ValidationError."""
    if endpoint not in byok_endpoints():
        raise ValidationError(f"Unknown endpoint {endpoint!r}.")
    with schema_context(tenant.schema_name), transaction.atomic():
        if api_key is None:
            ProviderCredential.objects.filter(endpoint=endpoint).delete()
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
    """endpoint -> plain key, for the gateway's process memory (never logged, never sent to clients)."""
    with schema_context(schema):
        rows = list(ProviderCredential.objects.values_list("endpoint", "encrypted_api_key"))
    return {endpoint: secret_decrypt(token) for endpoint, token in rows}
