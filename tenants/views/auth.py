"""Sign-in, sign-out, sign-up and the one-time hand-off into a portal."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from tenants.forms import OrganisationForm, SignupForm, TenantAuthenticationForm
from tenants.handoff import handoff_redeem, handoff_url
from tenants.http import HostRequest, PortalRequest
from tenants.middleware import SESSION_TENANT_KEY
from tenants.models import Tenant, User
from tenants.selectors import membership_get, membership_list_for_user
from tenants.services import tenant_create

BACKEND = "django.contrib.auth.backends.ModelBackend"


class LoginView(auth_views.LoginView):
    """Django's login, bound to the host's tenant: the session remembers which tenant it was opened on."""

    form_class = TenantAuthenticationForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: TenantAuthenticationForm) -> HttpResponse:  # type: ignore[override]
        response = super().form_valid(form)
        tenant = getattr(self.request, "tenant", None)
        self.request.session[SESSION_TENANT_KEY] = tenant.pk if tenant else None
        return response

    def form_invalid(self, form: TenantAuthenticationForm) -> HttpResponse:  # type: ignore[override]
        response = super().form_invalid(form)
        if any(error.code == "not_a_member" for error in form.non_field_errors().as_data()):
            response.status_code = 403
        return response


def home(request: HostRequest) -> HttpResponse:
    """Public landing page; signed in, the list of the user's organisations."""
    if not request.user.is_authenticated:
        return render(request, "accounts/landing.html")
    memberships = membership_list_for_user(user=request.user)
    return render(request, "accounts/organisations.html", {"memberships": memberships})


@require_http_methods(["GET", "POST"])
def signup(request: HostRequest) -> HttpResponse:
    """Create an organisation: with a new owner account, or for the signed-in user."""
    user = request.user if isinstance(request.user, User) else None
    signed_in = user is not None
    form_class = OrganisationForm if signed_in else SignupForm
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = tenant_create(
                slug=data["slug"],
                name=data["name"],
                owner_email=user.email if user is not None else data["email"],
                owner_password=None if signed_in else data["password1"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return HttpResponseRedirect(handoff_url(user=created.owner, tenant=created.tenant))
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/signup.html", {"form": form, "signed_in": signed_in}, status=status)


@login_required
def open_portal(request: PortalRequest, slug: str) -> HttpResponse:
    """From the public host into one of the user's portals, signed in."""
    tenant = get_object_or_404(Tenant, slug=slug)
    if membership_get(user=request.user, tenant=tenant) is None:
        return HttpResponse("You are not a member of this organisation.", status=403)
    return HttpResponseRedirect(handoff_url(user=request.user, tenant=tenant))


def handoff(request: PortalRequest, token: str) -> HttpResponse:
    """Redeem a one-time sign-in link on the tenant's host."""
    tenant = request.tenant
    user = handoff_redeem(token=token, tenant=tenant)
    if user is None:
        messages.error(request, "That sign-in link is invalid or has expired. Please sign in.")
        return redirect("login")
    login(request, user, backend=BACKEND)
    request.session[SESSION_TENANT_KEY] = tenant.pk
    return redirect("portal:overview")
