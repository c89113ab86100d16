"""Every error of the API is an OpenAI error body with the right status; malformed input is never a 5xx."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from django_tenants.utils import schema_context

from gateway.keys import api_key_create, api_key_revoke
from gateway.models import ApiKey
from tenants.models import Tenant
from tenants.services import tenant_reactivate, tenant_suspend
from tests.conftest import World
from tests.gateway.api.conftest import Keys, Simulator, chat

# No django_db mark: the writes these tests make (revoking, suspending) must be committed for the gateway
# process to see them.

OK = {"model": "sim/fast", "messages": [{"role": "user", "content": "Say hello"}]}


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, object] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (b"{not json", 400, "invalid_json", None),
        (b"[1, 2]", 400, "invalid_json", None),
        ({"messages": OK["messages"]}, 400, None, "model"),
        ({"model": "sim/fast"}, 400, None, "messages"),
        ({"model": "sim/fast", "messages": []}, 400, None, "messages"),
        (
            {"model": "sim/fast", "messages": [{"role": "robot", "content": "x"}]},
            400,
            None,
            "messages[0].role",
        ),
        ({**OK, "temperature": 3}, 400, None, "temperature"),
        ({**OK, "n": 0}, 400, None, "n"),
        ({**OK, "stream": "yes"}, 400, None, "stream"),
        ({**OK, "stream_options": {"include_usage": True}}, 400, None, "stream_options"),
        ({**OK, "model": "gpt-99-imaginary"}, 400, "model_not_found", "model"),
        ({**OK, "model": "sim-anthropic/fast", "n": 2}, 400, "unsupported_value", "model"),
        ({**OK, "max_tokens": 20_000}, 400, "context_length_exceeded", "messages"),
        ({**OK, "metadata": {"task_type": "poetry"}}, 400, None, "task_type"),
    ],
)
def test_bad_requests_get_openai_errors(
    gateway: str, keys: Keys, sim: Simulator, body: object, status: int, code: str | None, param: str | None
) -> None:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    response = httpx.post(
        f"{gateway}/v1/chat/completions", content=content, headers={"authorization": f"Bearer {keys.acme}"}
    )

    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    if code:
        assert error["code"] == code


def test_missing_and_wrong_keys_are_401(gateway: str, keys: Keys) -> None:
    missing = httpx.post(f"{gateway}/v1/chat/completions", json=OK)
    wrong = chat(gateway, "gate_AAAAAAAAAAAA_" + "B" * 40, OK)
    garbage = chat(gateway, "sk-not-a-gatehouse-key", OK)

    assert (missing.status_code, error_of(missing)["code"]) == (401, "missing_api_key")
    for response in (wrong, garbage):
        assert (response.status_code, error_of(response)["type"]) == (401, "authentication_error")


def test_the_x_api_key_header_authenticates_too(gateway: str, keys: Keys, sim: Simulator) -> None:
    response = httpx.post(f"{gateway}/v1/chat/completions", json=OK, headers={"x-api-key": keys.acme})

    assert response.status_code == 200


def test_a_key_may_only_use_its_allowed_models(gateway: str, keys: Keys, sim: Simulator) -> None:
    allowed = chat(gateway, keys.acme_fast_only, OK)
    refused = chat(gateway, keys.acme_fast_only, {**OK, "model": "sim/smart"})

    assert allowed.status_code == 200
    assert (refused.status_code, error_of(refused)["code"]) == (403, "model_not_allowed")


@pytest.fixture
def disposable_key(world: World, django_db_blocker: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        created = api_key_create(tenant=world.acme, name="disposable")
    yield created.raw_key, created.api_key.pk
    with django_db_blocker.unblock(), schema_context("t_acme"):  # type: ignore[attr-defined]
        ApiKey.objects.filter(pk=created.api_key.pk).delete()


def wait_for_status(gateway: str, key: str, status: int) -> httpx.Response:
    deadline = time.monotonic() + 5
    while True:
        response = chat(gateway, key, OK)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_a_revoked_key_is_refused_by_a_warm_gateway(
    gateway: str,
    world: World,
    sim: Simulator,
    disposable_key: tuple[str, int],
    django_db_blocker: pytest.FixtureRequest,
) -> None:
    raw, key_id = disposable_key
    assert chat(gateway, raw, OK).status_code == 200  # now cached in the gateway process
    revoked_at = time.monotonic()
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        api_key_revoke(tenant=world.acme, api_key_id=key_id)

    response = wait_for_status(gateway, raw, 401)

    assert response.status_code == 401
    assert "revoked" in str(error_of(response)["message"])
    assert time.monotonic() - revoked_at < 2  # pushed over pub/sub, not waiting for the 30 s TTL


def test_a_suspended_tenant_gets_403_and_is_served_again_when_reactivated(
    gateway: str, keys: Keys, world: World, sim: Simulator, django_db_blocker: pytest.FixtureRequest
) -> None:
    assert chat(gateway, keys.globex, OK).status_code == 200
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        tenant_suspend(tenant=Tenant.objects.get(pk=world.globex.pk), reason="test")
    try:
        suspended = wait_for_status(gateway, keys.globex, 403)
        assert error_of(suspended)["code"] == "tenant_suspended"
    finally:
        with django_db_blocker.unblock():  # type: ignore[attr-defined]
            tenant_reactivate(tenant=Tenant.objects.get(pk=world.globex.pk))
    assert wait_for_status(gateway, keys.globex, 200).status_code == 200


def test_a_tenant_host_accepts_only_its_own_keys(gateway: str, keys: Keys, sim: Simulator) -> None:
    port = gateway.rsplit(":", 1)[1]
    url = f"http://127.0.0.1:{port}/v1/chat/completions"

    own = httpx.post(url, json=OK, headers={"host": f"acme.localhost:{port}", "x-api-key": keys.acme})
    other = httpx.post(url, json=OK, headers={"host": f"acme.localhost:{port}", "x-api-key": keys.globex})

    assert own.status_code == 200
    assert (other.status_code, error_of(other)["code"]) == (403, "wrong_tenant_host")


def test_paths_methods_and_sizes(gateway: str, keys: Keys) -> None:
    auth = {"authorization": f"Bearer {keys.acme}"}
    unknown = httpx.get(f"{gateway}/v1/embeddings-of-the-future", headers=auth)
    wrong_method = httpx.get(f"{gateway}/v1/chat/completions", headers=auth)
    too_big = httpx.post(f"{gateway}/v1/chat/completions", content=b"x" * 70_000, headers=auth)

    assert (unknown.status_code, error_of(unknown)["type"]) == (404, "not_found_error")
    assert wrong_method.status_code == 405
    assert (too_big.status_code, error_of(too_big)["code"]) == (413, "request_too_large")


def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()  # the stdlib: orjson refuses integers over 64 bits, clients may not


def _mutations(rng: random.Random) -> Iterator[bytes]:
    """A few hundred malformed bodies: wrong types, missing and odd fields, broken JSON, random bytes."""
    values: list[object] = [None, True, -1, 0, 2**70, 1.5e308, "", "x" * 5000, [], {}, [None], {"a": []}]
    fields = [
        "model",
        "messages",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "n",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "tools",
        "tool_choice",
        "metadata",
        "user",
        "response_format",
    ]
    for field in fields:
        for value in values:
            yield _dumps({**OK, field: value})
    for value in values:
        yield _dumps({**OK, "messages": [value]})
        yield _dumps({**OK, "messages": [{"role": "user", "content": value}]})
        yield _dumps({**OK, "messages": [{"role": "user", "content": [{"type": "text", "text": value}]}]})
        yield _dumps(
            {**OK, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": value}]}]}
        )
    valid = _dumps(OK)
    for _ in range(60):
        cut = rng.randrange(len(valid))
        yield valid[:cut]
        yield bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))


def test_a_few_hundred_malformed_bodies_never_get_a_5xx(gateway: str, keys: Keys, sim: Simulator) -> None:
    rng = random.Random(20261127)
    bodies = list(_mutations(rng))
    assert len(bodies) >= 300
    with httpx.Client(headers={"authorization": f"Bearer {keys.acme}"}, timeout=30) as client:
        for body in bodies:
            response = client.post(f"{gateway}/v1/chat/completions", content=body)
            assert response.status_code < 500, (body[:200], response.text)
            if response.status_code >= 400:
                error_of(response)
