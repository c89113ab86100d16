"""Budget alerts: what the limiter reported (stream gh:alerts) recorded once, then handed to the hooks.

The settle script adds one stream entry the first time a budget crosses its soft threshold in a month; this
drain (Celery beat, every few seconds) turns entries into BudgetAlert rows, unique per tenant, key, month and
kind, calls each hook of settings.GATEHOUSE_BUDGET_ALERT_HOOKS for a new row, and only then deletes the
entries. A crash in between re-reads them: rows are not duplicated; a hook may, rarely, run twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.utils.module_loading import import_string

from billing.models import BudgetAlert
from config.redis import redis_client
from gateway.limits.service import ALERT_STREAM, from_units
from tenants.models import Membership, Tenant

log = logging.getLogger(__name__)

BATCH = 500


def budget_alerts_drain() -> int:
    """Record the reported alerts; returns how many new alerts were recorded."""
    client = redis_client()
    recorded = 0
    while True:
        entries: list[tuple[str, dict[str, str]]] = client.xrange(ALERT_STREAM, count=BATCH)  # type: ignore[assignment]
        if not entries:
            return recorded
        for _, fields in entries:
            alert = _record(fields)
            if alert is not None:
                recorded += 1
                _notify(alert)
        client.xdel(ALERT_STREAM, *[entry_id for entry_id, _ in entries])


def _record(fields: dict[str, str]) -> BudgetAlert | None:
    tenant = Tenant.objects.filter(pk=int(fields["tenant"])).first()
    if tenant is None:
        return None
    kind = fields["kind"]
    convert: Callable[[str], Decimal] = from_units if kind == BudgetAlert.Kind.SPEND else Decimal
    alert, created = BudgetAlert.objects.get_or_create(
        tenant=tenant,
        api_key_prefix=fields["key"],
        period=fields["period"],
        kind=kind,
        defaults={
            "used": convert(fields["used"]),
            "cap": convert(fields["cap"]),
            "threshold_percent": int(fields["soft"]),
        },
    )
    return alert if created else None


def _notify(alert: BudgetAlert) -> None:
    for path in settings.GATEHOUSE_BUDGET_ALERT_HOOKS:
        try:
            import_string(path)(alert)
        except Exception:
            log.exception("budget alert hook %s failed for alert %s", path, alert.pk)


def alert_text(alert: BudgetAlert) -> str:
    scope = f"API key {alert.api_key_prefix}" if alert.api_key_prefix else alert.tenant.name
    if alert.kind == BudgetAlert.Kind.SPEND:
        used = f"{alert.used.quantize(Decimal('0.01'))} of {alert.cap.quantize(Decimal('0.01'))}"
        what = f"spent {used} {alert.tenant.plan.currency.upper()}"
    else:
        what = f"used {int(alert.used):,} of {int(alert.cap):,} tokens"
    return (
        f"{scope} has {what} of its monthly budget for {alert.period} "
        f"(alert threshold {alert.threshold_percent}%). Requests are refused once the budget is reached."
    )


def email_owners(alert: BudgetAlert) -> None:
    """Hook: e-mail the tenant's owners and admins (Django's e-mail backend)."""
    roles = (Membership.Role.OWNER, Membership.Role.ADMIN)
    to = list(
        Membership.objects.filter(tenant=alert.tenant, role__in=roles).values_list("user__email", flat=True)
    )
    if to:
        send_mail(f"Gatehouse budget alert: {alert.tenant.name}", alert_text(alert), None, to)


def post_webhook(alert: BudgetAlert) -> None:
    """Hook: POST the alert as JSON to GATEHOUSE_BUDGET_ALERT_WEBHOOK_URL, when set."""
    url: str = settings.GATEHOUSE_BUDGET_ALERT_WEBHOOK_URL
    if not url:
        return
    payload = {
        "type": "budget.alert",
        "tenant": alert.tenant.slug,
        "api_key_prefix": alert.api_key_prefix or None,
        "period": alert.period,
        "kind": alert.kind,
        "used": str(alert.used),
        "cap": str(alert.cap),
        "threshold_percent": alert.threshold_percent,
        "message": alert_text(alert),
    }
    httpx.post(url, json=payload, timeout=5).raise_for_status()
