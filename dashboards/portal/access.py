"""Access checks for portal views (the membership itself is checked by TenantMembershipMiddleware)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden

if TYPE_CHECKING:
    from tenants.models import Membership

View = Callable[..., HttpResponse]


def member_required(view: View) -> View:
    """Signed-in member of the host's tenant; otherwise to the tenant's login page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if getattr(request, "membership", None) is None:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def role_required(allowed: Callable[[Membership], bool], refusal: str) -> Callable[[View], View]:
    """A member whose role passes `allowed`; other members get 403 with `refusal`."""

    def decorate(view: View) -> View:
        @wraps(view)
        @member_required
        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            membership = getattr(request, "membership", None)
            if membership is None or not allowed(membership):
                return HttpResponseForbidden(refusal)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


# Owners, admins and developers manage keys; viewers only look.
key_manager_required = role_required(lambda m: m.can_manage_keys, "Your role cannot manage API keys.")
# Owners and admins: the account itself (provider credentials, billing amounts and invoices).
account_manager_required = role_required(
    lambda m: m.can_manage_account, "Only the organisation's owners and admins can see this."
)
