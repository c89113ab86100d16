"""API keys: creation (shown once), keyed hashing, parsing, revocation and lookup from any host.

A key looks like `gate_<prefix>_<secret>`: the 12-character prefix is not secret and indexes the key (in the
tenant's schema and in the public prefix index); only HMAC-SHA256(server secret, whole key) is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from gateway.invalidation import invalidate_publish
from gateway.models import ApiKey
from tenants.models import ApiKeyRoute, Tenant

KEY_PREFIX = "gate_"
PREFIX_LENGTH = 12
SECRET_LENGTH = 40
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    raw_key: str  # the only time the full key exists outside the client


@dataclass(frozen=True)
class ParsedKey:
    prefix: str
    raw: str


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _hash_secret() -> bytes:
    configured: str = settings.GATEHOUSE_API_KEY_SECRET
    if configured:
        return configured.encode()
    # Derived so that a deployment needs only one secret; a separate one can be set to rotate independently.
    return hmac.new(settings.SECRET_KEY.encode(), b"gatehouse-api-key-hash", hashlib.sha256).digest()


def key_hash(raw_key: str) -> str:
    return hmac.new(_hash_secret(), raw_key.encode(), hashlib.sha256).hexdigest()


def key_parse(raw_key: str) -> ParsedKey | None:
    """Split a presented key into its prefix; None when it cannot be one of ours."""
    if not raw_key.startswith(KEY_PREFIX):
        return None
    body = raw_key[len(KEY_PREFIX) :]
    prefix, sep, secret = body.partition("_")
    if not sep or len(prefix) != PREFIX_LENGTH or len(secret) != SECRET_LENGTH:
        return None
    if not (prefix.isascii() and prefix.isalnum() and secret.isascii() and secret.isalnum()):
        return None
    return ParsedKey(prefix=prefix, raw=raw_key)


@transaction.atomic
def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    expires_at: datetime | None = None,
    allowed_models: list[str] | None = None,
    created_by_id: int | None = None,
) -> CreatedKey:
    """Create a key in the tenant's schema and its public prefix index row, in one transaction."""
    prefix = _random(PREFIX_LENGTH)
    raw = f"{KEY_PREFIX}{prefix}_{_random(SECRET_LENGTH)}"
    with schema_context(tenant.schema_name):
        api_key = ApiKey.objects.create(
            name=name.strip() or "API key",
            prefix=prefix,
            key_hash=key_hash(raw),
            expires_at=expires_at,
            allowed_models=sorted(set(allowed_models or [])),
            created_by_id=created_by_id,
        )
    ApiKeyRoute.objects.create(prefix=prefix, tenant=tenant)
    return CreatedKey(api_key=api_key, raw_key=raw)


def api_key_revoke(*, tenant: Tenant, api_key_id: int) -> ApiKey:
    """Revoke a key of this tenant (idempotent). Raises ApiKey.DoesNotExist for another tenant's id."""
    with schema_context(tenant.schema_name):
        api_key = ApiKey.objects.get(pk=api_key_id)
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
    prefix = api_key.prefix
    transaction.on_commit(lambda: invalidate_publish(f"key:{prefix}"))
    return api_key


@dataclass(frozen=True)
class KeyIdentity:
    """Who a valid key speaks for."""

    tenant: Tenant
    api_key: ApiKey


class ApiKeyError(Exception):
    """The key is not usable; `reason` is one of: invalid, revoked, expired, suspended."""

    def __init__(self, reason: str, detail: str = "", who: tuple[str, int, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail  # for "suspended": the tenant's suspension reason (shown to its own callers)
        self.who = who  # for "suspended": (schema, tenant id, key prefix) of the valid key refused


def api_key_authenticate(raw_key: str) -> KeyIdentity:
    """Resolve a presented key to its tenant and key, from any host, without scanning schemas.

    One indexed lookup in the public prefix index, one in the tenant's schema, then a constant-time
    comparison of the keyed hash. Raises ApiKeyError.
    """
    parsed = key_parse(raw_key)
    if parsed is None:
        raise ApiKeyError("invalid")
    route = ApiKeyRoute.objects.select_related("tenant").filter(prefix=parsed.prefix).order_by().first()
    if route is None:
        # Same work as a real comparison, so a bad prefix is not faster to detect than a bad secret.
        hmac.compare_digest(key_hash(raw_key), "0" * 64)
        raise ApiKeyError("invalid")
    tenant = route.tenant
    with schema_context(tenant.schema_name):
        api_key = ApiKey.objects.filter(prefix=parsed.prefix).order_by().first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, key_hash(raw_key)):
        raise ApiKeyError("invalid")
    if api_key.status == ApiKey.Status.REVOKED:
        raise ApiKeyError("revoked")
    if api_key.status == ApiKey.Status.EXPIRED:
        raise ApiKeyError("expired")
    if not tenant.is_active:
        raise ApiKeyError(
            "suspended", tenant.suspension_reason, (tenant.schema_name, tenant.pk, api_key.prefix)
        )
    return KeyIdentity(tenant=tenant, api_key=api_key)
