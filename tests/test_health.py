from __future__ import annotations

import pytest

from config.redis import _client
from tests.conftest import host_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("host", ["localhost", "acme.localhost"])
def test_healthz_answers_on_every_host(world: object, host: str) -> None:
    response = host_client(host).get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_the_database_and_redis(world: object) -> None:
    body = host_client("localhost").get("/readyz").json()

    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True


def test_readyz_is_503_when_redis_is_unreachable(world: object, settings: object) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # type: ignore[attr-defined]  # discard port: refused
    try:
        response = host_client("localhost").get("/readyz")
    finally:
        _client.cache_clear()

    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
    assert response.json()["checks"]["database"]["ok"] is True
