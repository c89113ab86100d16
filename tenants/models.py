"""Public-schema models: users, tenants and their domains, memberships, and the API-key prefix index."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class User(AbstractUser):
    """A person. Users live in the public schema and join tenants through Membership.

    The e-mail address is the login; `username` mirrors it so Django's admin and auth forms keep working.
    """

    email = models.EmailField("email address", unique=True)

    def save(self, *args: object, **kwargs: object) -> None:
        self.email = self.email.strip().lower()
        self.username = self.email
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class Tenant(TenantMixin):
    """A customer organisation, with its own PostgreSQL schema (`schema_name`, derived from the slug)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=40, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    plan = models.ForeignKey("billing.Plan", on_delete=models.PROTECT, related_name="tenants")
    created_at = models.DateTimeField(auto_now_add=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.CharField(max_length=200, blank=True)

    # Schemas are created on save; they are dropped only by the `tenant_delete` service.
    auto_create_schema = True
    auto_drop_schema = False

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Domain(DomainMixin):
    """A host name that resolves to a tenant (e.g. `acme.localhost`)."""


class Membership(models.Model):
    """A user's role in a tenant. A user can belong to several tenants."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        DEVELOPER = "developer", "Developer"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.DEVELOPER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_user_tenant_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user.email} in {self.tenant.slug} as {self.role}"

    @property
    def can_manage_keys(self) -> bool:
        return self.role in {self.Role.OWNER, self.Role.ADMIN, self.Role.DEVELOPER}

    @property
    def can_manage_account(self) -> bool:
        """Owners and admins: provider credentials, and later billing."""
        return self.role in {self.Role.OWNER, self.Role.ADMIN}


class ApiKeyRoute(models.Model):
    """Public index from an API key's visible prefix to its tenant.

    The key itself (hash, expiry, allow-list) lives in the tenant's schema; this row lets a request on the
    shared public host find that schema with one indexed lookup instead of scanning every schema.
    """

    prefix = models.CharField(max_length=16, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_key_routes")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.prefix} -> {self.tenant.slug}"
