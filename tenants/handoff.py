"""One-time sign-in links from the public host to a tenant's portal (sessions are per host).

A link is signed, expires after two minutes, names one user and one tenant, and is void once used: it carries
the user's last-login time, which signing in changes.
"""

from __future__ import annotations

from django.core import signing

from tenants.models import Tenant, User
from tenants.selectors import membership_get
from tenants.services import tenant_portal_url

SALT = "gatehouse.handoff"
MAX_AGE_SECONDS = 120


def _login_marker(user: User) -> str:
    return user.last_login.isoformat() if user.last_login else ""


def handoff_url(*, user: User, tenant: Tenant) -> str:
    token = signing.dumps({"u": user.pk, "t": tenant.pk, "l": _login_marker(user)}, salt=SALT)
    return f"{tenant_portal_url(tenant)}auth/handoff/{token}/"


def handoff_redeem(*, token: str, tenant: Tenant) -> User | None:
    """The user a valid, unused link for this tenant names; None otherwise."""
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("t") != tenant.pk:
        return None
    user_id = data.get("u")
    if not isinstance(user_id, int):
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or data.get("l") != _login_marker(user):
        return None
    if membership_get(user=user, tenant=tenant) is None:
        return None
    return user
