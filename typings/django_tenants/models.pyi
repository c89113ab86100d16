# Minimal stubs for the parts of django-tenants that Gatehouse uses (the package ships no types).
from typing import Any

from django.db import models

class TenantMixin(models.Model):
    schema_name: Any
    auto_create_schema: bool
    auto_drop_schema: bool
    domain_url: str
    def save(self, verbosity: int = ..., *args: Any, **kwargs: Any) -> None: ...
    def delete(
        self, using: Any = ..., keep_parents: bool = ..., *, force_drop: bool = ...
    ) -> tuple[int, dict[str, int]]: ...
    def create_schema(
        self, check_if_exists: bool = ..., sync_schema: bool = ..., verbosity: int = ...
    ) -> bool: ...

class DomainMixin(models.Model):
    domain: Any
    tenant: Any
    is_primary: Any
