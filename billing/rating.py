"""Rating: a tenant's period (its rollups and plan history) as invoice lines, exact then rounded to cents.

Rules (docs/BILLING.md):
- Usage lines: one per model, cache status (provider answer or cache hit) and unit prices. Its exact amount
  is input tokens x input unit price + output tokens x output unit price, per 1M, + requests x the price per
  request (the BYOK fee; 0 for other traffic); the unit prices are those the requests were rated at (the
  catalogue price or BYOK fee and the plan in force when each request arrived).
- Base fee, included allowance and minimum charge: each plan the tenant was on during the period counts for
  the share of the period it was in force, to the second.
- Allowance: included tokens first (covering that share of the usage amount), then included currency; the
  credit never exceeds the usage lines.
- Minimum: if the invoice is below the prorated minimum, a top-up line brings it up to it.
- Each line's exact amount is rounded half-up to cents once; the invoice total is the sum of those cents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from billing.models import InvoiceLine, UsageRollup
from billing.periods import period_bounds
from billing.plans import PlanSpan, plan_spans
from tenants.models import Tenant

CENT = Decimal("0.01")
MILLION = Decimal(1_000_000)
ZERO = Decimal(0)
MISS = "miss"


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class LineDraft:
    kind: str
    description: str
    exact_amount: Decimal
    model: str = ""
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    unit_input_price: Decimal | None = None
    unit_output_price: Decimal | None = None
    unit_request_price: Decimal | None = None

    @property
    def amount(self) -> Decimal:
        return cents(self.exact_amount)


@dataclass(frozen=True, slots=True)
class Rating:
    currency: str
    lines: list[LineDraft] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


@dataclass(slots=True)
class _Usage:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    price: Decimal = ZERO  # the records' own prices (what records from before unit prices are billed at)


def period_rate(tenant: Tenant, period: str, *, until: datetime | None = None) -> Rating:
    """The lines of `tenant`'s invoice for `period` from its rollups (bring them up to date first).

    With `until`, usage is what the rollups hold so far, and fees count up to `until`'s share (an estimate of
    a period in progress, for the portal)."""
    start, end = period_bounds(period)
    spans = plan_spans(tenant, start, min(end, until) if until else end)
    currency = spans[-1].plan.currency if spans else tenant.plan.currency
    money = _formatter(currency)
    usage = _usage_lines(tenant, period, money)
    lines = list(usage)
    lines += _fee_lines(spans, start, end, money)
    lines += _allowance_lines(spans, start, end, usage, money)
    lines += _minimum_lines(spans, start, end, lines, money)
    return Rating(currency=currency, lines=lines)


LineKey = tuple[str, bool, Decimal, Decimal, Decimal]


def usage_line_key(
    model: str, cache_status: str, unit_in: Decimal, unit_out: Decimal, unit_request: Decimal
) -> LineKey:
    """Which usage line a rollup (or a ledger group) belongs to: hits of either kind share a line."""
    return model, cache_status != MISS, unit_in, unit_out, unit_request


def usage_exact(
    *,
    requests: int,
    input_tokens: int,
    output_tokens: int,
    unit_in: Decimal,
    unit_out: Decimal,
    unit_request: Decimal,
    price: Decimal = ZERO,
) -> Decimal:
    """A usage line's exact amount: tokens x unit prices per 1M + requests x the price per request. Records
    stored before unit prices were kept (all zero, yet priced) are billed at the price each was charged."""
    if not unit_in and not unit_out and not unit_request:
        return price
    return (input_tokens * unit_in + output_tokens * unit_out) / MILLION + requests * unit_request


def _usage_lines(tenant: Tenant, period: str, money: Money) -> list[LineDraft]:
    start, end = period_bounds(period)
    groups: dict[LineKey, _Usage] = defaultdict(_Usage)
    rollups = UsageRollup.objects.filter(tenant=tenant, day__gte=start.date(), day__lt=end.date())
    for row in rollups.values_list(
        "model",
        "cache_status",
        "unit_input_price",
        "unit_output_price",
        "unit_request_price",
        "requests",
        "input_tokens",
        "output_tokens",
        "price",
    ).iterator(chunk_size=2000):
        model, status, unit_in, unit_out, unit_request, requests, input_tokens, output_tokens, price = row
        group = groups[usage_line_key(model, status, unit_in, unit_out, unit_request)]
        group.requests += requests
        group.input_tokens += input_tokens
        group.output_tokens += output_tokens
        group.price += price
    lines = []
    for (model, hit, unit_in, unit_out, unit_request), group in sorted(groups.items()):
        exact = usage_exact(
            requests=group.requests,
            input_tokens=group.input_tokens,
            output_tokens=group.output_tokens,
            unit_in=unit_in,
            unit_out=unit_out,
            unit_request=unit_request,
            price=group.price,
        )
        if exact == 0:
            continue  # failed requests, or a BYOK fee of 0: nothing to bill
        label = f"{model} (cache hits)" if hit else model
        lines.append(
            LineDraft(
                kind=InvoiceLine.Kind.CACHE_HITS if hit else InvoiceLine.Kind.USAGE,
                description=f"{label}: {_rates(group, unit_in, unit_out, unit_request, money)}",
                exact_amount=exact,
                model=model,
                requests=group.requests,
                input_tokens=group.input_tokens,
                output_tokens=group.output_tokens,
                unit_input_price=unit_in,
                unit_output_price=unit_out,
                unit_request_price=unit_request,
            )
        )
    return lines


def _rates(group: _Usage, unit_in: Decimal, unit_out: Decimal, unit_request: Decimal, money: Money) -> str:
    """`360,000 input tokens x $0.12/1M + 90,000 output tokens x $0.48/1M (3 requests)`, with
    `+ 3 requests x $0.0005/request` in place of the count when requests have a price of their own."""
    requests = f"{group.requests:,} requests"
    if not unit_in and not unit_out and not unit_request:
        tokens = f"{group.input_tokens:,} input + {group.output_tokens:,} output tokens"
        return f"{tokens} at their prices then ({requests})"
    rates = []
    if unit_in or unit_out:
        rates.append(
            f"{group.input_tokens:,} input tokens x {money(unit_in)}/1M"
            f" + {group.output_tokens:,} output tokens x {money(unit_out)}/1M"
        )
    if unit_request:
        return " + ".join([*rates, f"{requests} x {money(unit_request)}/request"])
    return f"{rates[0]} ({requests})"


def _share(span: PlanSpan, start: datetime, end: datetime) -> Decimal:
    seconds = Decimal(int((span.end - span.start).total_seconds()))
    return seconds / Decimal(int((end - start).total_seconds()))


def _when(span: PlanSpan, start: datetime, end: datetime) -> str:
    if span.start == start and span.end == end:
        return f"{start:%B %Y}"
    last = span.end if span.end.time() != datetime.min.time() else span.end.replace(microsecond=0)
    return (
        f"{span.start:%d %b %H:%M} to {last:%d %b %Y %H:%M} UTC ({_share(span, start, end):.2%} of the month)"
    )


def _fee_lines(spans: list[PlanSpan], start: datetime, end: datetime, money: Money) -> list[LineDraft]:
    return [
        LineDraft(
            kind=InvoiceLine.Kind.BASE_FEE,
            description=f"{span.plan.name} plan, {money(span.plan.monthly_fee)}/month: "
            + _when(span, start, end),
            exact_amount=span.plan.monthly_fee * _share(span, start, end),
        )
        for span in spans
        if span.plan.monthly_fee
    ]


def _allowance_lines(
    spans: list[PlanSpan], start: datetime, end: datetime, usage: list[LineDraft], money: Money
) -> list[LineDraft]:
    usage_exact_total = sum((line.exact_amount for line in usage), ZERO)
    usage_cents = sum((line.amount for line in usage), ZERO)
    tokens = sum(line.input_tokens + line.output_tokens for line in usage)
    included_tokens = sum((span.plan.included_tokens * _share(span, start, end) for span in spans), ZERO)
    included_amount = sum((span.plan.included_amount * _share(span, start, end) for span in spans), ZERO)
    lines = []
    credit_left = usage_cents
    if included_tokens and tokens:
        covered = min(Decimal(1), included_tokens / tokens)
        credit = min(usage_exact_total * covered, credit_left)
        if cents(credit):
            lines.append(
                LineDraft(
                    kind=InvoiceLine.Kind.ALLOWANCE,
                    description=(
                        f"Included tokens: {int(included_tokens):,} of {tokens:,} tokens used"
                        f" ({covered:.2%} of the usage above)"
                    ),
                    exact_amount=-credit,
                )
            )
            credit_left -= cents(credit)
            usage_exact_total -= credit
    if included_amount and credit_left > 0:
        credit = min(included_amount, usage_exact_total, credit_left)
        if cents(credit):
            lines.append(
                LineDraft(
                    kind=InvoiceLine.Kind.ALLOWANCE,
                    description=f"Included usage: up to {money(cents(included_amount))}",
                    exact_amount=-credit,
                )
            )
    return lines


def _minimum_lines(
    spans: list[PlanSpan], start: datetime, end: datetime, lines: list[LineDraft], money: Money
) -> list[LineDraft]:
    minimum = cents(
        sum((span.plan.minimum_monthly_charge * _share(span, start, end) for span in spans), ZERO)
    )
    subtotal = sum((line.amount for line in lines), ZERO)
    if subtotal >= minimum:
        return []
    return [
        LineDraft(
            kind=InvoiceLine.Kind.MINIMUM,
            description=f"Minimum monthly charge {money(minimum)}: top-up of {money(minimum - subtotal)}",
            exact_amount=minimum - subtotal,
        )
    ]


Money = Callable[[Decimal], str]
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


def _formatter(currency: str) -> Money:
    """$0.18, $12.50, $0.0255 (unit prices keep their significant decimals, at least two); 12.50 CHF."""
    symbol = _SYMBOLS.get(currency.lower())

    def money(amount: Decimal) -> str:
        text = f"{amount.normalize():f}"
        whole, _, fraction = text.partition(".")
        number = f"{whole}.{fraction.ljust(2, '0')}"
        return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"

    return money
