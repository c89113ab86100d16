"""Encryption at rest for tenants' provider credentials (Fernet: AES-128-CBC + HMAC-SHA256).

The key is GATEHOUSE_ENCRYPTION_KEY when set (any string; rotate by re-saving credentials), else derived
from SECRET_KEY, so a deployment needs only one secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


@cache
def _fernet(secret: str) -> Fernet:
    key = hmac.new(secret.encode(), b"gatehouse-credential-encryption", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _current() -> Fernet:
    secret: str = settings.GATEHOUSE_ENCRYPTION_KEY or settings.SECRET_KEY
    return _fernet(secret)


def secret_encrypt(plain: str) -> str:
    return _current().encrypt(plain.encode()).decode()


def secret_decrypt(token: str) -> str:
    """The plain text. Raises ValueError when the token was not made with the current key."""
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise ValueError("credential cannot be decrypted with the current encryption key") from error
