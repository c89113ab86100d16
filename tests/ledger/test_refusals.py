"""Part of leak 5: refusals decided inside the web process (its memory of an RPM refusal, a suspended
tenant) left no trace. Now every answered request is accounted for: a ledger row, or a count per key and
minute (RefusalCount) for refusals that must stay cheap during a flood."""

from __future__ import annotations

import time
from typing import Any

from django_tenants.utils import schema_context

from gateway.models import RefusalCount
from tenants.models import Tenant
from tenants.services import tenant_reactivate, tenant_suspend
from tests.gateway.api.conftest import Simulator, chat
from tests.ledger.conftest import Ledgerco, ledger, refusals

HELLO = {"model": "sim/fast", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 20}
FLUSHED = 1.5  # a web process sends its refusal counts at most every second


def test_a_flood_past_the_rpm_limit_is_accounted_for_request_by_request(
    gateway: str, ledgerco: Ledgerco, sim: Simulator, set_limits: Any
) -> None:
    set_limits(rpm=3)

    statuses = [chat(gateway, ledgerco.key, HELLO).status_code for _ in range(40)]

    assert statuses[:3] == [200, 200, 200]
    assert set(statuses[3:]) == {429}
    time.sleep(FLUSHED)
    rows = ledger(ledgerco)
    counted = refusals(ledgerco)
    assert counted > 0  # most of the flood never reached Redis, nor the database, one by one
    assert len(rows) + counted == len(statuses)
    assert _codes(ledgerco) == {"rate_limit_exceeded"}


def test_a_suspended_tenants_requests_are_counted_not_dropped(
    gateway: str, ledgerco: Ledgerco, sim: Simulator
) -> None:
    tenant = Tenant.objects.get(pk=ledgerco.tenant.pk)
    tenant_suspend(tenant=tenant, reason="unpaid invoice")
    time.sleep(0.2)
    try:
        statuses = [chat(gateway, ledgerco.key, HELLO).status_code for _ in range(7)]
    finally:
        tenant_reactivate(tenant=Tenant.objects.get(pk=tenant.pk))
        time.sleep(0.2)

    assert statuses == [403] * 7
    time.sleep(FLUSHED)
    assert len(ledger(ledgerco)) == 0
    assert refusals(ledgerco) == 7
    assert _codes(ledgerco) == {"tenant_suspended"}


def _codes(org: Ledgerco) -> set[str]:
    with schema_context(org.schema):
        return set(RefusalCount.objects.values_list("code", flat=True))
