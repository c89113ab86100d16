"""Provider cost and the price charged for one request, in Decimal.

A request is rated when it is made, with the catalogue's provider prices and the tenant's plan then in force
(on the tenant's own provider key: the plan's BYOK fee, per 1k tokens and per request, instead),
and both the result and the unit prices it used are kept in its RequestRecord: later price or plan changes
never re-rate old usage (docs/BILLING.md).

Rounding (docs/BILLING.md): unit prices per 1M tokens are rounded half-up to 8 decimal places; a request's
cost and price are computed exactly from tokens and unit prices, then rounded half-up to 8 places once,
here. Sums of records are exact after that. Invoices round to cents only per invoice line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from gateway.routing import ModelInfo

MILLION = Decimal(1_000_000)
THOUSAND = Decimal(1_000)
PLACES = Decimal("0.00000001")
HUNDRED = Decimal(100)
ZERO = Decimal(0)


def _places8(value: Decimal) -> Decimal:
    return value.quantize(PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class UnitPrices:
    """What one million input and output tokens cost (or are charged), and what each request is charged on
    top of its tokens (the BYOK per-request fee; 0 otherwise), 8 decimal places."""

    input: Decimal
    output: Decimal
    request: Decimal = ZERO

    def amount(self, input_tokens: int, output_tokens: int) -> Decimal:
        """The amount of a request, exact then rounded half-up to 8 places."""
        tokens = input_tokens * self.input + output_tokens * self.output
        return _places8(tokens / MILLION + self.request)

    def percent(self, percent: Decimal) -> UnitPrices:
        """These prices times `percent` / 100 (a cache hit's price), rounded to 8 places."""
        return UnitPrices(
            _places8(self.input * percent / HUNDRED),
            _places8(self.output * percent / HUNDRED),
            _places8(self.request * percent / HUNDRED),
        )


FREE = UnitPrices(ZERO, ZERO)


@dataclass(frozen=True, slots=True)
class ModelRule:
    """A plan's own price for one model: explicit prices per 1M tokens, or its own markup percent."""

    markup_percent: Decimal | None = None
    input_price_per_mtok: Decimal | None = None
    output_price_per_mtok: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PlanPricing:
    """How a plan prices requests: a markup over provider cost, per-model rules, the cache-hit percent, and
    the fee on requests served with the tenant's own provider key (BYOK)."""

    markup_percent: Decimal = Decimal(20)
    hit_percent: Decimal = Decimal(10)
    rules: Mapping[str, ModelRule] = field(default_factory=dict)
    byok_fee_per_1k_tokens: Decimal = ZERO
    byok_fee_per_request: Decimal = ZERO
    # Per catalogue snapshot of a model (a catalogue edit makes new ModelInfo objects): computed once, as the
    # hot path asks for every request and every candidate of its budget estimate.
    _units: dict[ModelInfo, UnitPrices] = field(default_factory=dict, compare=False, repr=False)

    def request_unit_prices(self, model: ModelInfo, *, own_key: bool) -> UnitPrices:
        """What this plan charges for a request to `model`: on the tenant's own provider key (`own_key`), the
        BYOK fee whatever the model; otherwise the model's unit prices."""
        return self.byok_unit_prices() if own_key else self.unit_prices(model)

    def byok_unit_prices(self) -> UnitPrices:
        """The BYOK fee as unit prices: the fee per 1k tokens x 1,000 per 1M input and output tokens alike,
        and the fee per request. The provider bills the tokens themselves to the tenant."""
        per_mtok = _places8(self.byok_fee_per_1k_tokens * THOUSAND)
        return UnitPrices(per_mtok, per_mtok, _places8(self.byok_fee_per_request))

    def unit_prices(self, model: ModelInfo) -> UnitPrices:
        """What this plan charges per 1M tokens of `model` when a provider answers."""
        units = self._units.get(model)
        if units is None:
            units = self._units[model] = self._unit_prices(model)
        return units

    def _unit_prices(self, model: ModelInfo) -> UnitPrices:
        rule = self.rules.get(model.name)
        if (
            rule is not None
            and rule.input_price_per_mtok is not None
            and rule.output_price_per_mtok is not None
        ):
            return UnitPrices(_places8(rule.input_price_per_mtok), _places8(rule.output_price_per_mtok))
        markup = rule.markup_percent if rule is not None and rule.markup_percent is not None else None
        return provider_prices(model).percent(HUNDRED + (self.markup_percent if markup is None else markup))


def provider_prices(model: ModelInfo) -> UnitPrices:
    return UnitPrices(_places8(model.input_price_per_mtok), _places8(model.output_price_per_mtok))


def provider_cost(model: ModelInfo, input_tokens: int, output_tokens: int) -> Decimal:
    return provider_prices(model).amount(input_tokens, output_tokens)
