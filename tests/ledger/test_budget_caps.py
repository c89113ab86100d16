"""Leak 4: budgets were not caps. 12 concurrent requests whose prompts the gateway under-estimated took a 0.05
USD budget to 0.30 USD (603%). Now each request reserves an upper bound of what the provider can bill
(gateway.tokens.bound), so a burst never takes the ledger past the budget."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import stripe

from tests.gateway.api.conftest import Simulator
from tests.ledger.conftest import Ledgerco, assert_reconciles, ledger_until

BURST = 12
BUDGET = Decimal("0.05")
# o200k (the routing estimate) counts 40,000 "=" as 625 tokens; the simulator bills 10,000.
HOSTILE = {"model": "sim/smart", "messages": [{"role": "user", "content": "=" * 40_000}], "max_tokens": 5}


async def _burst(gateway: str, key: str) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        headers = {"authorization": f"Bearer {key}"}
        url = f"{gateway}/v1/chat/completions"
        return await asyncio.gather(*(client.post(url, json=HOSTILE, headers=headers) for _ in range(BURST)))


def test_a_burst_of_underestimated_prompts_stays_within_the_budget(
    gateway: str,
    ledgerco: Ledgerco,
    sim: Simulator,
    set_limits: Any,
    stripe_client: stripe.StripeClient,
) -> None:
    set_limits(monthly_budget=BUDGET)
    sim.set("sim/smart", ttft_ms=300)  # every request is in flight when the last one is admitted

    answers = asyncio.run(_burst(gateway, ledgerco.key))

    assert {a.status_code for a in answers} == {200, 429}
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 429} == {"insufficient_quota"}
    rows = ledger_until(ledgerco, BURST)
    assert len(rows) == BURST
    served = [r for r in rows if r.http_status == 200]
    assert all(r.input_tokens == 10_000 for r in served)  # what the provider billed
    assert sum(r.price for r in rows) <= BUDGET
    assert_reconciles(ledgerco, stripe_client)
