"""Access checks for portal views (the membership itself is checked by TenantMembershipMiddleware)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden

View = Callable[..., HttpResponse]


def member_required(view: View) -> View:
    """Signed-in member of the host's tenant; otherwise to the tenant's login page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if getattr(request, "membership", None) is None:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def key_manager_required(view: View) -> View:
    """Owners, admins and developers manage keys; viewers only look."""

    @wraps(view)
    @member_required
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        membership = getattr(request, "membership", None)
        if membership is None or not membership.can_manage_keys:
            return HttpResponseForbidden("Your role cannot manage API keys.")
        return view(request, *args, **kwargs)

    return wrapper
