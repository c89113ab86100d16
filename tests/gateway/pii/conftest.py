"""The live gateway and simulator fixtures, for the PII tests."""

from tests.gateway.api.conftest import gateway, keys, sim  # noqa: F401
