"""The thin adapter between billing and Stripe's API (the official `stripe` package), nothing else.

Every write carries an Idempotency-Key derived from our own ids; our database enforces idempotency as well
(localstripe ignores the header, and Stripe forgets keys after about 24 hours), and `*_find` calls let a run
that crashed between a Stripe write and our commit adopt what it created instead of creating it again.

`STRIPE_API_BASE` set means a Stripe-compatible server (localstripe in dev and tests). With
`GATEHOUSE_STRIPE_LOCALSTRIPE` (default: on when STRIPE_API_BASE is set) three things change, each harmless
against real Stripe but needed by localstripe (docs/BILLING.md): customers get a test card and a $0
subscription (localstripe invoices only subscribed customers), and invoices are not finalized (localstripe
has no finalize route; its invoices are payable as drafts).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import stripe
from django.conf import settings

logger = logging.getLogger(__name__)

ZERO_PLAN_ID = "gatehouse-zero"
PAUSE_AFTER_WRITES_ENV = "GATEHOUSE_BILLING_TEST_PAUSE_AFTER_WRITES"
_writes = 0
_writes_lock = threading.Lock()
_zero_plan_lock = threading.Lock()


class StripeUnavailableError(Exception):
    """Stripe could not be reached or failed on its side (network, 5xx, 429): retry later."""


class StripeRefusedError(Exception):
    """Stripe refused the request (4xx other than 429): retrying will not help."""


def stripe_client() -> stripe.StripeClient:
    base = settings.STRIPE_API_BASE
    return stripe.StripeClient(
        settings.STRIPE_API_KEY,
        base_addresses={"api": base} if base else None,
        max_network_retries=settings.GATEHOUSE_STRIPE_NETWORK_RETRIES,
    )


def _call(what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return method(*args, **kwargs)
    except (stripe.APIConnectionError, stripe.RateLimitError) as error:
        raise StripeUnavailableError(f"{what}: {error.user_message or error}") from error
    except stripe.StripeError as error:
        status = error.http_status or 0
        if status >= 500 or status == 0:
            raise StripeUnavailableError(f"{what}: HTTP {status} {error.user_message or error}") from error
        raise StripeRefusedError(f"{what}: HTTP {status} {error.user_message or error}") from error


def _write(what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    result = _call(what, method, *args, **kwargs)
    _wrote()
    return result


def _wrote() -> None:
    """Test hook for the kill-mid-run test: after N writes, say so in a file and wait to be killed."""
    global _writes
    limit = os.environ.get(PAUSE_AFTER_WRITES_ENV)
    if not limit:
        return
    with _writes_lock:
        _writes += 1
        reached = _writes >= int(limit)
    if reached:
        paused = Path(settings.DATA_DIR, "billing-paused")
        paused.parent.mkdir(parents=True, exist_ok=True)
        paused.write_text(str(_writes))
        logger.warning("billing: paused after %d Stripe writes (%s)", _writes, PAUSE_AFTER_WRITES_ENV)
        while True:
            time.sleep(1)


def _options(key: str) -> dict[str, str]:
    return {"idempotency_key": key}


def _metadata(obj: Any) -> Mapping[str, str]:
    return dict(_plain(obj).get("metadata") or {})


def _all(listing: Any) -> Iterator[Any]:
    yield from listing.auto_paging_iter()


def _plain(obj: Any) -> dict[str, Any]:
    """A Stripe object as plain dicts and lists (what the rest of billing reads)."""
    plain: dict[str, Any] = obj.to_dict()
    return plain


# Customers


def customer_find(client: stripe.StripeClient, *, email: str, tenant_id: int) -> str | None:
    """A customer created for this tenant by an earlier, interrupted run."""
    listing = _call("list customers", client.v1.customers.list, params={"email": email, "limit": 100})
    for customer in _all(listing):
        if _metadata(customer).get("gatehouse_tenant_id") == str(tenant_id):
            return str(customer.id)
    return None


def customer_create(client: stripe.StripeClient, *, tenant_id: int, slug: str, name: str, email: str) -> str:
    params: dict[str, Any] = {
        "name": name,
        "email": email,
        "metadata": {"gatehouse_tenant_id": str(tenant_id), "gatehouse_tenant_slug": slug},
    }
    customer = _write(
        "create customer", client.v1.customers.create, params=params, options=_options(f"gh-cus-{tenant_id}")
    )
    return str(customer.id)


def localstripe_subscription(client: stripe.StripeClient, customer_id: str, currency: str) -> str:
    """localstripe only: a test card and a $0 monthly subscription, without which it cannot invoice."""
    listing = _call("list subscriptions", client.v1.subscriptions.list, params={"customer": customer_id})
    for subscription in _all(listing):
        return str(subscription.id)  # an interrupted run's
    token = _call(
        "create test card token",
        client.v1.tokens.create,
        params={"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}},
    )
    _write(
        "attach test card",
        client.v1.customers.payment_sources.create,
        customer_id,
        params={"source": token.id},
    )
    plan_id = f"{ZERO_PLAN_ID}-{currency}"
    with _zero_plan_lock:  # a run's workers would race to create it
        try:
            _call("retrieve $0 plan", client.v1.plans.retrieve, plan_id)
        except StripeRefusedError:
            try:
                _write("create $0 plan", client.v1.plans.create, params=_zero_plan(plan_id, currency))
            except StripeRefusedError:  # created meanwhile by another process (409): it is there now
                _call("retrieve $0 plan", client.v1.plans.retrieve, plan_id)
    subscription = _write(
        "create $0 subscription",
        client.v1.subscriptions.create,
        params={"customer": customer_id, "items": [{"plan": plan_id}]},
        options=_options(f"gh-sub-{customer_id}"),
    )
    return str(subscription.id)


def _zero_plan(plan_id: str, currency: str) -> dict[str, Any]:
    return {
        "id": plan_id,
        "amount": 0,
        "currency": currency,
        "interval": "month",
        "product": {"name": "Gatehouse usage (invoiced separately)"},
    }


# Invoice items and invoices


def invoice_items_find(client: stripe.StripeClient, customer_id: str) -> dict[str, str]:
    """The customer's invoice items that carry one of our line ids: line uid -> invoice item id."""
    listing = _call(
        "list invoice items", client.v1.invoice_items.list, params={"customer": customer_id, "limit": 100}
    )
    found = {}
    for item in _all(listing):
        line = _metadata(item).get("gatehouse_line")
        if line:
            found[line] = str(item.id)
    return found


def invoice_item_create(
    client: stripe.StripeClient,
    *,
    customer_id: str,
    line_uid: str,
    invoice_uid: str,
    amount_cents: int,
    currency: str,
    description: str,
) -> str:
    item = _write(
        "create invoice item",
        client.v1.invoice_items.create,
        params={
            "customer": customer_id,
            "amount": amount_cents,
            "currency": currency,
            "description": description,
            "metadata": {"gatehouse_line": line_uid, "gatehouse_invoice": invoice_uid},
        },
        options=_options(f"gh-ii-{line_uid}"),
    )
    return str(item.id)


def invoice_of_item(client: stripe.StripeClient, item_id: str) -> str | None:
    """The invoice an invoice item was swept into, if any (how a run that crashed right after creating the
    invoice finds it again, also where metadata on invoices is not kept)."""
    item = _plain(_call("retrieve invoice item", client.v1.invoice_items.retrieve, item_id))
    invoice = item.get("invoice")
    return str(invoice) if invoice else None


def invoice_find(client: stripe.StripeClient, customer_id: str, invoice_uid: str) -> dict[str, Any] | None:
    listing = _call("list invoices", client.v1.invoices.list, params={"customer": customer_id, "limit": 100})
    for invoice in _all(listing):
        if _metadata(invoice).get("gatehouse_invoice") == invoice_uid:
            return _plain(invoice)
    return None


def invoice_create(
    client: stripe.StripeClient, *, customer_id: str, invoice_uid: str, tenant_id: int, period: str
) -> dict[str, Any]:
    """A draft invoice that takes the customer's pending invoice items (ours, just pushed)."""
    return _plain(
        _write(
            "create invoice",
            client.v1.invoices.create,
            params={
                "customer": customer_id,
                "pending_invoice_items_behavior": "include",
                "description": f"Gatehouse usage, {period}",
                "metadata": {
                    "gatehouse_invoice": invoice_uid,
                    "gatehouse_tenant_id": str(tenant_id),
                    "gatehouse_period": period,
                },
            },
            options=_options(f"gh-in-{invoice_uid}"),
        )
    )


def invoice_finalize(client: stripe.StripeClient, invoice_id: str, invoice_uid: str) -> dict[str, Any]:
    """Finalize (Stripe then numbers it, hosts it and, with auto_advance, collects it)."""
    return _plain(
        _write(
            "finalize invoice",
            client.v1.invoices.finalize_invoice,
            invoice_id,
            params={"auto_advance": True},
            options=_options(f"gh-fin-{invoice_uid}"),
        )
    )


def invoice_retrieve(client: stripe.StripeClient, invoice_id: str) -> dict[str, Any]:
    return _plain(_call("retrieve invoice", client.v1.invoices.retrieve, invoice_id))


# Billing Meters


def meter_event_create(
    client: stripe.StripeClient,
    *,
    event_name: str,
    identifier: str,
    customer_id: str,
    value: int,
    timestamp: int,
    attempt: int = 0,
) -> Any:
    """One meter event (POST /v1/billing/meter_events); Stripe deduplicates `identifier` for ~24 hours.

    The Idempotency-Key changes per attempt: Stripe replays a saved 5xx for a reused key, which would block
    retries; the identifier is what keeps a retried event from counting twice."""
    return _write(
        "create meter event",
        client.v1.billing.meter_events.create,
        params={
            "event_name": event_name,
            "identifier": identifier,
            "timestamp": timestamp,
            "payload": {"stripe_customer_id": customer_id, "value": str(value)},
        },
        options=_options(f"gh-me-{identifier}-{attempt}"),
    )
