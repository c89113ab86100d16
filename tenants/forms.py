"""Forms of sign-up and sign-in."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from tenants.models import Domain, Tenant, User
from tenants.selectors import membership_get
from tenants.services import tenant_domain_for
from tenants.slugs import slug_validate


class OrganisationForm(forms.Form):
    """A new organisation (tenant), for a user who is already signed in."""

    name = forms.CharField(max_length=100, label="Organisation name")
    slug = forms.CharField(
        max_length=40,
        label="Portal address",
        help_text="Your portal will be at <slug>.localhost. Lowercase letters, digits and hyphens.",
    )

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"].strip().lower()
        slug_validate(slug)
        taken = Tenant.objects.filter(slug=slug).exists()
        if taken or Domain.objects.filter(domain=tenant_domain_for(slug)).exists():
            raise ValidationError("That address is taken. Choose another.", code="taken")
        return slug


class SignupForm(OrganisationForm):
    """A new organisation and its owner's account."""

    email = forms.EmailField(label="Your e-mail")
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email=email).exists():
            raise ValidationError(
                "An account with this e-mail exists. Sign in first, then create the organisation.",
                code="email_taken",
            )
        return email

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password1 = cleaned.get("password1")
        password2 = cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords differ.")
        elif password1:
            try:
                validate_password(password1, User(email=cleaned.get("email", "")))
            except ValidationError as error:
                self.add_error("password1", error)
        return cleaned


class TenantAuthenticationForm(AuthenticationForm):
    """Django's sign-in form; on a tenant host it admits only that tenant's members."""

    username = forms.EmailField(label="E-mail", widget=forms.EmailInput(attrs={"autofocus": True}))

    def clean_username(self) -> str:
        return str(self.cleaned_data["username"]).strip().lower()

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        tenant = getattr(self.request, "tenant", None)
        if tenant is not None and membership_get(user=user, tenant=tenant) is None:
            raise ValidationError(
                "This account is not a member of %(tenant)s.",
                code="not_a_member",
                params={"tenant": tenant.name},
            )
