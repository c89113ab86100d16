"""Reconciliation: proof, tenant by tenant, that the ledger, the rollups, our invoice lines and Stripe's
invoices agree to the cent for a period (`billing_reconcile --period YYYY-MM`).

Checks, in order:
1. Ledger = rollups, exactly: requests, tokens, provider cost and price per model, provider, cache status
   and unit prices (per 1M input and output tokens, per request).
2. Ledger = invoice lines: each usage line's tokens equal the ledger's, its amount equals tokens x unit
   prices + requests x the price per request, rounded to the cent, and the sum of the records' own (8-place)
   prices is within their rounding (half of 1e-8 per request) of the line's exact amount. Billable usage
   without an invoice is a difference.
3. Invoice total = the sum of its lines' cents.
4. Stripe (invoice_items mode): the Stripe invoice's total equals ours, in cents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings

from billing import stripe_api
from billing.models import Invoice, InvoiceLine, UsageRollup
from billing.periods import period_bounds, period_tenants
from billing.rating import LineKey, cents, usage_exact, usage_line_key
from billing.rollups import period_ledger_sums
from tenants.models import Tenant

HALF_PLACE = Decimal("0.000000005")
_SUMMED = ("requests", "input_tokens", "output_tokens", "provider_cost", "price")
_GROUP = (
    "model",
    "provider",
    "cache_status",
    "unit_input_price",
    "unit_output_price",
    "unit_request_price",
)


@dataclass(frozen=True, slots=True)
class Difference:
    tenant: str
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.tenant}: {self.check}: {self.detail}"


def reconcile_period(
    period: str, *, tenants: Iterable[Tenant] | None = None, client: stripe.StripeClient | None = None
) -> tuple[int, list[Difference]]:
    """(tenants checked, differences). No differences means everything agrees to the cent."""
    checked, differences = 0, []
    use_stripe = settings.GATEHOUSE_BILLING_MODE == "invoice_items"
    for tenant in tenants if tenants is not None else period_tenants(period).order_by("slug"):
        checked += 1
        differences += reconcile_tenant(
            tenant, period, client=client if use_stripe else None, stripe=use_stripe
        )
    return checked, differences


def reconcile_tenant(
    tenant: Tenant, period: str, *, client: stripe.StripeClient | None = None, stripe: bool = True
) -> list[Difference]:
    found: list[Difference] = []

    def differ(check: str, detail: str) -> None:
        found.append(Difference(tenant.slug, check, detail))

    ledger = {_key(row): row for row in period_ledger_sums(tenant, period)}
    rollups = _rollup_sums(tenant, period)
    for key in sorted(set(ledger) | set(rollups), key=str):
        for name in _SUMMED:
            want, got = ledger.get(key, {}).get(name) or 0, rollups.get(key, {}).get(name) or 0
            if Decimal(want) != Decimal(got):
                differ("ledger vs rollups", f"{_label(key)} {name}: ledger {want}, rollups {got}")

    invoice = Invoice.objects.filter(tenant=tenant, period=period).first()
    expected = _expected_usage_lines(ledger.values())
    if invoice is None or invoice.status == Invoice.Status.PENDING:
        if any(cents(line["exact"]) for line in expected.values()):
            differ("ledger vs invoice", "billable usage but no invoice for the period")
        return found
    lines = {
        usage_line_key(
            line.model, "hit" if line.kind == InvoiceLine.Kind.CACHE_HITS else "miss", *_units(line)
        ): line
        for line in invoice.lines.filter(kind__in=[InvoiceLine.Kind.USAGE, InvoiceLine.Kind.CACHE_HITS])
    }
    for key in sorted(set(expected) | set(lines), key=str):
        want, line = expected.get(key), lines.get(key)
        if want is None or line is None:
            what = "an invoice line without usage" if want is None else "usage without an invoice line"
            if want is None or cents(want["exact"]):
                differ("ledger vs invoice lines", f"{_label(key)}: {what}")
            continue
        if (line.input_tokens, line.output_tokens) != (want["input_tokens"], want["output_tokens"]):
            differ(
                "ledger vs invoice lines",
                f"{_label(key)} tokens: ledger {want['input_tokens']}+{want['output_tokens']},"
                f" line {line.input_tokens}+{line.output_tokens}",
            )
        if line.amount != cents(want["exact"]):
            differ(
                "ledger vs invoice lines", f"{_label(key)}: ledger {cents(want['exact'])}, line {line.amount}"
            )
        if abs(want["price"] - want["exact"]) > HALF_PLACE * want["requests"]:
            differ(
                "ledger prices", f"{_label(key)}: records sum to {want['price']}, tokens rate {want['exact']}"
            )
    line_sum = sum((line.amount for line in invoice.lines.all()), Decimal(0))
    if line_sum != invoice.total:
        differ("invoice total", f"lines sum to {line_sum}, invoice says {invoice.total}")
    if stripe and invoice.stripe_invoice_id:
        client = client or stripe_api.stripe_client()
        remote = stripe_api.invoice_retrieve(client, invoice.stripe_invoice_id)
        stripe_total = int(remote.get("total") or 0)
        if stripe_total != invoice.total_cents:
            differ("invoice vs Stripe", f"ours {invoice.total_cents} cents, Stripe {stripe_total} cents")
    elif stripe and invoice.total and invoice.status != Invoice.Status.EMPTY:
        differ("invoice vs Stripe", f"invoice {invoice.uid} ({invoice.status}) is not in Stripe yet")
    return found


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in _GROUP)


def _label(key: tuple[Any, ...]) -> str:
    """`sim/smart simulator miss at 2.4/9.6 per 1M` (a ledger group) or `sim/smart (cache hits) at ...`, with
    `+ 0.0005 per request` when requests have a price of their own."""
    *what, unit_in, unit_out, unit_request = key
    names = [("(cache hits)" if part else "") if isinstance(part, bool) else str(part) for part in what]
    prices = f"{unit_in.normalize():f}/{unit_out.normalize():f} per 1M"
    if unit_request:
        prices += f" + {unit_request.normalize():f} per request"
    return f"{' '.join(name for name in names if name)} at {prices}"


def _units(line: InvoiceLine) -> tuple[Decimal, Decimal, Decimal]:
    """A line's unit prices; lines rated before a price per request was kept have none (0)."""
    return (
        line.unit_input_price or Decimal(0),
        line.unit_output_price or Decimal(0),
        line.unit_request_price or Decimal(0),
    )


def _rollup_sums(tenant: Tenant, period: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    start, end = period_bounds(period)
    rows: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(lambda: dict.fromkeys(_SUMMED, 0))
    rollups = UsageRollup.objects.filter(tenant=tenant, day__gte=start.date(), day__lt=end.date())
    for rollup in rollups.values(*_GROUP, *_SUMMED).iterator(2000):
        sums = rows[_key(rollup)]
        for name in _SUMMED:
            sums[name] += rollup[name]
    return rows


def _expected_usage_lines(groups: Iterable[dict[str, Any]]) -> dict[LineKey, dict[str, Any]]:
    lines: dict[LineKey, dict[str, Any]] = {}
    for group in groups:
        unit_in, unit_out = group["unit_input_price"], group["unit_output_price"]
        key = usage_line_key(
            group["model"], group["cache_status"], unit_in, unit_out, group["unit_request_price"]
        )
        line = lines.setdefault(
            key,
            {"input_tokens": 0, "output_tokens": 0, "requests": 0, "price": Decimal(0), "exact": Decimal(0)},
        )
        line["input_tokens"] += group["input_tokens"] or 0
        line["output_tokens"] += group["output_tokens"] or 0
        line["requests"] += group["requests"]
        line["price"] += group["price"] or Decimal(0)
    for key, line in lines.items():
        line["exact"] = usage_exact(
            requests=line["requests"],
            input_tokens=line["input_tokens"],
            output_tokens=line["output_tokens"],
            unit_in=key[2],
            unit_out=key[3],
            unit_request=key[4],
            price=line["price"],
        )
    return {key: line for key, line in lines.items() if line["exact"] or line["price"]}
