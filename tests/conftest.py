"""Shared fixtures: real PostgreSQL (test database created by pytest-django, migrated with django-tenants),
real Redis (a test database number, flushed per test), and two tenants created once per session:
acme (alice owner, bob developer, vera viewer) and globex (charlie owner), who must never see each other."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from billing.models import Plan
from config.redis import redis_client
from tenants.models import Tenant, User
from tenants.services import membership_add, tenant_create
from tests.live import free_port, start_simulator, start_web, start_worker, stop
from tests.stripe_server import start_localstripe

PASSWORD = "correct-horse-battery"


# Fixtures that start child processes (uvicorn, the simulator, a Celery worker, localstripe): a test using any
# of them is marked `processes`, so that `pytest -m "not processes and not browser"` is the fast lane.
PROCESS_FIXTURES = frozenset({"live_server_url", "simulator_url", "celery_worker", "localstripe_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.processes)


@dataclass(frozen=True)
class World:
    acme: Tenant
    globex: Tenant
    alice: User
    bob: User
    vera: User
    charlie: User


@pytest.fixture(scope="session")
def django_db_setup(
    django_test_environment: None,
    django_db_blocker: pytest.FixtureRequest,
    django_db_modify_db_settings: None,
) -> Iterator[None]:
    """Always create the test database, also for sessions whose tests only talk to child processes
    (browser, worker): otherwise pytest-django skips it and those processes would use the dev database."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        config = setup_databases(
            verbosity=0, interactive=False, aliases={"default": False}, serialized_aliases=set()
        )
        name = connection.settings_dict["NAME"]
        assert name.startswith("test_"), f"refusing to run tests against {name}"
    yield
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        teardown_databases(config, verbosity=0)


@pytest.fixture(scope="session")
def world(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> World:
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        starter = Plan.objects.get(slug="starter")
        acme = tenant_create(
            slug="acme",
            name="Acme Corp",
            owner_email="alice@acme.test",
            owner_password=PASSWORD,
            plan=starter,
        )
        globex = tenant_create(
            slug="globex", name="Globex", owner_email="charlie@globex.test", owner_password=PASSWORD
        )
        bob = User(email="bob@acme.test")
        bob.set_password(PASSWORD)
        bob.save()
        membership_add(tenant=acme.tenant, user=bob, role="developer")
        vera = User(email="vera@acme.test")
        vera.set_password(PASSWORD)
        vera.save()
        membership_add(tenant=acme.tenant, user=vera, role="viewer")
        return World(
            acme=acme.tenant,
            globex=globex.tenant,
            alice=acme.owner,
            bob=bob,
            vera=vera,
            charlie=globex.owner,
        )


@pytest.fixture
def acme(world: World, db: None) -> Tenant:
    return Tenant.objects.get(pk=world.acme.pk)


@pytest.fixture
def globex(world: World, db: None) -> Tenant:
    return Tenant.objects.get(pk=world.globex.pk)


@pytest.fixture(autouse=True)
def _clean_redis() -> None:
    redis_client().flushdb()


def host_client(host: str) -> Client:
    return Client(HTTP_HOST=host)


def signed_in(host: str, email: str, password: str = PASSWORD) -> Client:
    """A client signed in through the host's real login form."""
    client = host_client(host)
    response = client.post("/login/", {"username": email, "password": password})
    assert response.status_code == 302, response.content.decode()[:500]
    return client


@pytest.fixture
def acme_client(acme: Tenant) -> Client:
    return signed_in("acme.localhost", "alice@acme.test")


@pytest.fixture
def tenant_schema(acme: Tenant) -> Iterator[Tenant]:
    with schema_context(acme.schema_name):
        yield acme


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def simulator_url(artifacts_dir: Path) -> Iterator[str]:
    """The provider simulator, as a real server process."""
    port = free_port()
    proc = start_simulator(port, artifacts_dir / "simulator.log")
    yield f"http://127.0.0.1:{port}"
    stop(proc)


def gateway_env(simulator_url: str) -> dict[str, str]:
    """Settings of the test gateway processes: the simulator behind them, and timings short enough for
    tests (circuit state read from Redis on every request, so tests never wait for a local cache)."""
    return {
        "GATEHOUSE_SIMULATOR_URL": simulator_url,
        "GATEHOUSE_EXTRA_ENDPOINTS": json.dumps(
            {
                "simulator_anthropic": {"base_url": simulator_url, "api_key": "simulated"},
                # An OpenAI-kind endpoint without a deployment key that takes tenants' keys: usable only
                # with a tenant's own key (and then charged the plan's BYOK fee).
                "keyless_openai": {"base_url": f"{simulator_url}/v1", "api_key": "", "byok": True},
                # A keyless server that takes no tenant keys (vLLM-like): every tenant, catalogue prices.
                "keyless_vllm": {"base_url": f"{simulator_url}/v1", "api_key": ""},
            }
        ),
        "GATEHOUSE_FIRST_BYTE_TIMEOUT": "0.5",
        "GATEHOUSE_RETRY_BASE_SECONDS": "0.01",
        "GATEHOUSE_CIRCUIT_OPEN_SECONDS": "1",
        "GATEHOUSE_STATE_CACHE_SECONDS": "0",
        "GATEHOUSE_MAX_BODY_BYTES": "65536",
    }


@pytest.fixture(scope="session")
def live_server_url(world: World, simulator_url: str, artifacts_dir: Path) -> Iterator[str]:
    """uvicorn serving config.asgi on the test database; data it writes is committed."""
    port = free_port()
    proc = start_web(port, artifacts_dir / "web.log", **gateway_env(simulator_url))
    yield f"http://localhost:{port}"
    stop(proc)


@pytest.fixture(scope="session")
def localstripe_url(artifacts_dir: Path) -> Iterator[str]:
    """localstripe's base URL, for `stripe.StripeClient(..., base_addresses={"api": url})`. Its state is in
    memory only and shared by the session: tests that need it empty use the `localstripe` fixture."""
    port = free_port()
    proc = start_localstripe(port, artifacts_dir / "localstripe.log")
    yield f"http://127.0.0.1:{port}"
    stop(proc)


@pytest.fixture(scope="session")
def celery_worker(world: World, artifacts_dir: Path, localstripe_url: str) -> Iterator[str]:
    """A real Celery worker process on the test broker and database (billing tasks talk to localstripe)."""
    name = f"test-{os.getpid()}@localhost"
    env = {"STRIPE_API_BASE": localstripe_url, "GATEHOUSE_STRIPE_LOCALSTRIPE": "true"}
    proc = start_worker(name, artifacts_dir / "worker.log", **env)
    yield name
    stop(proc)
