"""Budgets and token caps are hard caps through the real gateway: a burst of concurrent requests whose
prompts o200k compresses far below what the provider bills never takes the ledger past the cap
(gateway.limits.estimate, gateway.tokens.bound). The routing estimate counts sim/* prompts with o200k, as the
reservation once did: 40,000 "=" are 625 o200k tokens, and the simulator bills ceil(40,000 / 4) = 10,000."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pytest_django import DjangoDbBlocker

from gateway.keys import api_key_create
from tests.gateway.api.conftest import Simulator, drain_usage
from tests.gateway.limits.conftest import Org

BURST = 12
BODY = {"model": "sim/smart", "messages": [{"role": "user", "content": "=" * 40_000}], "max_tokens": 5}


def burst(gateway: str, key: str, count: int) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            headers = {"authorization": f"Bearer {key}"}
            return await asyncio.gather(
                *(
                    client.post(f"{gateway}/v1/chat/completions", json=BODY, headers=headers)
                    for _ in range(count)
                )
            )

    return asyncio.run(main())


@pytest.fixture
def fresh_key(org: Org, django_db_blocker: DjangoDbBlocker) -> str:
    """A key with no usage yet this month, so that its cap starts empty."""
    with django_db_blocker.unblock():
        return api_key_create(tenant=org.tenant, name=f"caps {uuid.uuid4().hex[:8]}").raw_key


@pytest.mark.parametrize(
    ("cap", "value"),
    [("monthly_budget", Decimal("0.05")), ("monthly_token_cap", 25_000)],
    ids=["budget", "token-cap"],
)
def test_a_burst_of_underestimated_prompts_never_takes_the_ledger_past_the_cap(
    gateway: str,
    org: Org,
    limits: Any,
    sim: Simulator,
    fresh_key: str,
    django_db_blocker: DjangoDbBlocker,
    cap: str,
    value: Decimal | int,
) -> None:
    limits(fresh_key.split("_")[1], **{cap: value})
    sim.set("sim/smart", ttft_ms=300)  # every request is still in flight when the last one is admitted

    answers = burst(gateway, fresh_key, BURST)
    with django_db_blocker.unblock():
        records = drain_usage(org.tenant.schema_name)
    mine = [records[answer.headers["x-request-id"]] for answer in answers]
    served = [record for record in mine if record.http_status == 200]
    refused = [answer for answer in answers if answer.status_code == 429]

    assert {answer.status_code for answer in answers} <= {200, 429}
    assert all(record.input_tokens == 10_000 for record in served)  # what the provider billed
    if cap == "monthly_budget":
        assert sum(record.price for record in mine) <= value
    else:
        assert sum(record.input_tokens + record.output_tokens for record in mine) <= value
    assert refused, "the cap must refuse part of the burst"
    assert {answer.json()["error"]["code"] for answer in refused} == {"insufficient_quota"}
    assert served, "the cap must admit what fits"
