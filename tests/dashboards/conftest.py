"""Fixtures of the dashboard tests."""

from __future__ import annotations

import pytest

from tenants.models import User
from tests.conftest import PASSWORD


@pytest.fixture
def operator(world: object) -> User:
    """A staff user: the console's operator."""
    return User.objects.create_user(
        username="ops@gatehouse.test", email="ops@gatehouse.test", password=PASSWORD, is_staff=True
    )
