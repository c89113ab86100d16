"""Fixtures for the inference API tests: a real gateway (uvicorn) with the provider simulator behind it,
keys committed where the gateway process can see them, simulator control, and draining the usage stream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import openai
import pytest
from django_tenants.utils import schema_context
from openai.types.chat import ChatCompletionMessageParam

from config.redis import redis_client
from gateway.catalog.models import CatalogModel
from gateway.keys import api_key_create
from gateway.metering.consumer import usage_consume_once
from gateway.models import RequestRecord
from tests.conftest import World

HELLO_BODY: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]


@dataclass(frozen=True)
class Keys:
    acme: str
    acme_fast_only: str
    globex: str


@pytest.fixture(scope="session")
def keys(world: World, django_db_blocker: pytest.FixtureRequest) -> Keys:
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        CatalogModel.objects.update_or_create(
            name="sim-anthropic/fast",
            defaults={
                "provider": "anthropic",
                "endpoint": "simulator_anthropic",
                "upstream_model": "sim/fast",
                "input_price_per_mtok": Decimal("3"),
                "output_price_per_mtok": Decimal("15"),
                "context_window": 200_000,
                "supports_n": False,
            },
        )
        CatalogModel.objects.update_or_create(
            name="byok/fast",
            defaults={"provider": "openai", "endpoint": "keyless_openai", "upstream_model": "sim/fast"},
        )
        CatalogModel.objects.update_or_create(
            name="vllm/fast",
            defaults={
                "provider": "openai",
                "endpoint": "keyless_vllm",
                "upstream_model": "sim/fast",
                "input_price_per_mtok": Decimal("1"),
                "output_price_per_mtok": Decimal("2"),
            },
        )
        return Keys(
            acme=api_key_create(tenant=world.acme, name="api tests").raw_key,
            acme_fast_only=api_key_create(
                tenant=world.acme, name="fast only", allowed_models=["sim/fast"]
            ).raw_key,
            globex=api_key_create(tenant=world.globex, name="globex api tests").raw_key,
        )


class Simulator:
    def __init__(self, url: str) -> None:
        self.url = url

    def set(self, model: str, **settings: object) -> None:
        response = httpx.post(f"{self.url}/_control", json={"model": model, **settings})
        assert response.status_code == 200, response.text

    def reset(self) -> None:
        httpx.post(f"{self.url}/_control", json={"reset": True}).raise_for_status()


@pytest.fixture
def sim(simulator_url: str) -> Iterator[Simulator]:
    simulator = Simulator(simulator_url)
    simulator.reset()
    yield simulator
    simulator.reset()


@pytest.fixture
def gateway(live_server_url: str, keys: Keys) -> str:
    return live_server_url


@pytest.fixture
def client(gateway: str, keys: Keys) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=keys.acme, max_retries=0, timeout=30)


@pytest.fixture
def async_client(gateway: str, keys: Keys) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=keys.acme, max_retries=0, timeout=30)


def drain_usage(schema: str = "t_acme") -> dict[str, RequestRecord]:
    """Run the usage consumer once, in-process, and return the tenant's records by request id."""
    usage_consume_once(redis_client(), "tests")
    with schema_context(schema):
        return {r.request_id: r for r in RequestRecord.objects.all()}


def by_label(client_request_id: str, schema: str = "t_acme", seconds: float = 5) -> RequestRecord:
    """The record of the request the client labelled `client_request_id`, once the consumer has stored it."""
    deadline = time.monotonic() + seconds
    while True:
        found = [r for r in drain_usage(schema).values() if r.client_request_id == client_request_id]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, f"{len(found)} records labelled {client_request_id}"
            return found[0]
        time.sleep(0.1)


def chat(gateway: str, key: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}", **headers},
        timeout=30,
    )
