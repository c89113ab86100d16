from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm, UserChangeForm

from tenants.models import ApiKeyRoute, Domain, Membership, Tenant, User


class DomainInline(admin.TabularInline[Domain, Tenant]):
    model = Domain
    extra = 0


class MembershipInline(admin.TabularInline[Membership, Tenant]):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin[Tenant]):
    list_display = ["name", "slug", "status", "plan", "created_at"]
    list_filter = ["status", "plan"]
    search_fields = ["name", "slug"]
    readonly_fields = ["schema_name", "created_at", "suspended_at"]
    inlines = [DomainInline, MembershipInline]

    def get_readonly_fields(self, request: object, obj: Tenant | None = None) -> list[str]:
        # The slug names the schema and the host: fixed once the tenant exists.
        return [*self.readonly_fields, "slug"] if obj else self.readonly_fields

    def has_delete_permission(self, request: object, obj: Tenant | None = None) -> bool:
        return False  # dropping a schema goes through the tenant_delete service, not a click


class UserCreateForm(BaseUserCreationForm[User]):
    class Meta:
        model = User
        fields = ("email",)


class UserEditForm(UserChangeForm[User]):
    class Meta:
        model = User
        fields = ("email",)


@admin.register(User)
class UserAdmin(DjangoUserAdmin[User]):
    form = UserEditForm
    add_form = UserCreateForm
    list_display = ["email", "is_staff", "is_active", "date_joined", "last_login"]
    search_fields = ["email"]
    ordering = ["email"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "tenant__slug"]
    autocomplete_fields = ["user"]


@admin.register(ApiKeyRoute)
class ApiKeyRouteAdmin(admin.ModelAdmin[ApiKeyRoute]):
    list_display = ["prefix", "tenant", "created_at"]
    search_fields = ["prefix", "tenant__slug"]
    readonly_fields = ["prefix", "tenant", "created_at"]
