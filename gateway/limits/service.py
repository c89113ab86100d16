"""Admitting and settling requests against their tenant's and key's limits (admit.lua, settle.lua).

`limits_admit` is the hot path's one Redis round trip before anything is sent upstream; the settle rides in
the usage event's XADD round trip (`limits_settle_piggyback`), or, for a request that ended without a usage
event, runs on its own after the last byte (`limits_settle_later`).

The admission also writes the request's open record (its usage event as it would be if the process died now,
and this admission, to settle it) into its process's open-requests hash, in the same call; the settle removes
it. A process that dies leaves its open records to the reaper (gateway.metering.reaper), which settles them
within seconds, with what their last checkpoint says was delivered.

While Redis cannot be reached, requests are admitted unchecked (GATEHOUSE_LIMITS_REDIS_DOWN="open", the
default) or refused with 503 ("closed"); Redis is not asked again for DOWN_BACKOFF_S after a failure, so an
outage costs no request more than one short timeout.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import logging
import math
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from config.redis import hot_redis
from config.resp import HotClient
from gateway.api.errors import ApiError
from gateway.limits.clock import duration, now_ms
from gateway.limits.deny import Denial, deny_remember, inflight_add, inflight_done
from gateway.limits.policy import Limits, LimitSet
from gateway.metering.emit import Piggyback
from gateway.metering.events import UsageEvent, usage_event_json
from gateway.metering.opened import settled_marker

log = logging.getLogger(__name__)

UNIT = Decimal("0.00000001")  # money in Redis: integer units of 1e-8 (the ledger's precision)
NO_OPEN_KEY = "gh:open:-"  # settle.lua always removes the open record; without one, from an empty key
_LIMITS = ("rpm", "tpm", "concurrency", "monthly_budget", "monthly_token_cap", "soft_percent")
ALERT_STREAM = "gh:alerts"
BUDGET_TTL_S = 40 * 86400
DOWN_BACKOFF_S = 1.0
SEED_TIMEOUT_S = 5.0  # reading a month of the ledger, rarely (a new month, lost counters)
Headers = tuple[tuple[bytes, bytes], ...]

OK, RPM, TPM, CONCURRENCY, BUDGET, TOKEN_CAP, NEED_SEED, TOO_LARGE = range(8)

_SOURCE = {name: (Path(__file__).parent / f"{name}.lua").read_text() for name in ("admit", "settle")}
SETTLE_SOURCE = _SOURCE["settle"]
_SHA = {name: hashlib.sha1(source.encode()).hexdigest() for name, source in _SOURCE.items()}  # noqa: S324
_down_until = 0.0
_background: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True)
class Scope:
    """One set of limits a request counts against, with its Redis keys."""

    label: str  # "" for the tenant, else the API key's prefix
    limits: Limits
    keys: tuple[str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class Admission:
    """A request let in: what to give back or correct once it ends."""

    request_id: str
    tenant_id: int
    period: str
    scopes: tuple[Scope, ...]
    tokens_taken: int
    headers: Headers
    open_key: str = NO_OPEN_KEY  # the open-requests hash of the process that admitted it

    def to_json_dict(self) -> dict[str, Any]:
        """What the reaper needs to settle this admission (no headers)."""
        return {
            "rid": self.request_id,
            "tenant": self.tenant_id,
            "period": self.period,
            "taken": self.tokens_taken,
            "open": self.open_key,
            "scopes": [
                [scope.label, list(scope.keys), [_json_limit(getattr(scope.limits, n)) for n in _LIMITS]]
                for scope in self.scopes
            ],
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> Admission:
        scopes = []
        for label, keys, values in data["scopes"]:
            limits = dict(zip(_LIMITS, values, strict=True))
            if limits["monthly_budget"] is not None:
                limits["monthly_budget"] = Decimal(limits["monthly_budget"])
            scopes.append(Scope(str(label), Limits(**limits), tuple(keys)))
        return cls(
            request_id=str(data["rid"]),
            tenant_id=int(data["tenant"]),
            period=str(data["period"]),
            scopes=tuple(scopes),
            tokens_taken=int(data["taken"]),
            headers=(),
            open_key=str(data["open"]),
        )


def _json_limit(value: object) -> object:
    return str(value) if isinstance(value, Decimal) else value


def open_record(admission: Admission, event: UsageEvent) -> bytes:
    """An open request as its process's open-requests hash holds it: the usage event to store if the process
    dies now and the admission to settle."""
    return b'{"event":%b,"admission":%b}' % (usage_event_json(event), orjson.dumps(admission.to_json_dict()))


def period_of(ms: int) -> tuple[str, datetime, datetime]:
    """The calendar month (UTC) of `ms`: its label YYYY-MM, its start and the start of the next."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = calendar.monthrange(start.year, start.month)[1]
    end = datetime.fromtimestamp(start.timestamp() + days * 86400, tz=UTC)
    return start.strftime("%Y-%m"), start, end


def to_units(amount: Decimal) -> int:
    return int((amount / UNIT).to_integral_value(rounding=ROUND_CEILING))


def from_units(units: int | str) -> Decimal:
    return (Decimal(units) * UNIT).normalize()


def scope_keys(tenant_id: int, key_prefix: str, period: str) -> tuple[str, str, str, str, str]:
    """A scope's Redis keys: the tenant's, or with `key_prefix` one key's."""
    tag = f"k{key_prefix}" if key_prefix else f"t{tenant_id}"
    base = f"gh:rl:{{{tag}}}"  # one hash tag per scope: a scope's keys share a Redis Cluster slot
    return (f"{base}:rpm", f"{base}:tpm", f"{base}:live", f"{base}:held", f"{base}:budget:{period}")


def scopes_of(tenant_id: int, key_prefix: str, limits: LimitSet, period: str) -> tuple[Scope, ...]:
    scopes = [Scope("", limits.tenant, scope_keys(tenant_id, "", period))]
    if not limits.key.empty:
        scopes.append(Scope(key_prefix, limits.key, scope_keys(tenant_id, key_prefix, period)))
    return tuple(scopes)


def _arg(value: int | Decimal | None, *, money: bool = False) -> str:
    if value is None:
        return "-1"
    return str(to_units(Decimal(value)) if money else int(value))


async def limits_admit(
    *,
    tenant_id: int,
    schema: str,
    key_prefix: str,
    limits: LimitSet,
    request_id: str,
    tokens: int,
    worst_price: Decimal,
    worst_tokens: int,
    open_key: str = "",
    open_event: UsageEvent | None = None,
) -> Admission | None:
    """Admit a request (one Redis round trip) or raise ApiError 429; None when Redis is down and the
    deployment fails open. `tokens` is taken from the TPM buckets now; `worst_price` and `worst_tokens`
    are reserved against the monthly budgets until `limits_settle_later` puts the real figures in.

    With `open_key` and `open_event`, the admitted request's open record (`open_record`) is written into
    that hash in the same call."""
    global _down_until
    if time.monotonic() < _down_until:
        _redis_down(None)
        return None
    now = now_ms()
    period, _, period_end = period_of(now)
    scopes = scopes_of(tenant_id, key_prefix, limits, period)
    admitted = Admission(request_id, tenant_id, period, scopes, tokens, (), open_key or NO_OPEN_KEY)
    opened = (open_key, open_record(admitted, open_event)) if open_key and open_event is not None else None
    seeds: dict[int, tuple[int, int]] = {}
    client = hot_redis()
    call = _AdmitCall(scopes, now, request_id, tokens, worst_price, worst_tokens, opened)
    try:
        async with asyncio.timeout(settings.GATEHOUSE_LIMITS_TIMEOUT):
            result = await call.run(client, seeds)
        if int(result[0]) == NEED_SEED:  # this month's budget is not in Redis: fetch it from the ledger
            async with asyncio.timeout(SEED_TIMEOUT_S):
                for index, scope in enumerate(scopes):
                    if _capped(scope.limits):
                        seeds[index] = await _seed(schema, scope.label, now)
            async with asyncio.timeout(settings.GATEHOUSE_LIMITS_TIMEOUT):
                result = await call.run(client, seeds)
    except (RedisError, OSError, TimeoutError) as error:
        _down_until = time.monotonic() + DOWN_BACKOFF_S
        _redis_down(error)
        return None
    except DatabaseError as error:  # the ledger could not be read for the seed: as if Redis were down
        _redis_down(error)
        return None
    code = int(result[0])
    headers = _headers(result)
    if code != OK:
        scope = scopes[int(result[1])]
        if code == RPM:
            _remember(scope, tenant_id, result, headers, now)
        raise _refusal(code, scope, result, headers, period_end, now)
    inflight_add(_tag(scope, tenant_id) for scope in scopes)
    return Admission(request_id, tenant_id, period, scopes, tokens, headers, admitted.open_key)


@dataclass(frozen=True, slots=True)
class _AdmitCall:
    scopes: tuple[Scope, ...]
    now: int
    request_id: str
    tokens: int
    worst_price: Decimal
    worst_tokens: int
    opened: tuple[str, bytes] | None  # (open-requests hash, open record)

    async def run(self, client: HotClient, seeds: dict[int, tuple[int, int]]) -> list[Any]:
        lease_ms = int(settings.GATEHOUSE_LIMITS_LEASE_SECONDS * 1000)
        args: list[str | int | bytes] = [
            self.now,
            self.request_id,
            lease_ms,
            self.tokens,
            to_units(self.worst_price),
            self.worst_tokens,
            BUDGET_TTL_S,
        ]
        for index, scope in enumerate(self.scopes):
            seed = seeds.get(index, (-1, -1))
            lim = scope.limits
            args += [
                _arg(lim.rpm),
                _arg(lim.tpm),
                _arg(lim.concurrency),
                _arg(lim.monthly_budget, money=True),
                _arg(lim.monthly_token_cap),
                seed[0],
                seed[1],
            ]
        keys = [key for scope in self.scopes for key in scope.keys]
        if self.opened is not None:
            keys.append(self.opened[0])
            args.append(self.opened[1])
        result: list[Any] = await client.evalsha(_SHA["admit"], _SOURCE["admit"], keys, args)
        return result


def scope_tags(tenant_id: int, key_prefix: str, limits: LimitSet) -> tuple[tuple[str, int | None], ...]:
    """The scopes a request of this principal counts against, as deny_check takes them: (tag, concurrency)."""
    tenant = (f"t{tenant_id}", limits.tenant.concurrency)
    return (tenant,) if limits.key.empty else (tenant, (f"k{key_prefix}", limits.key.concurrency))


def _tag(scope: Scope, tenant_id: int) -> str:
    return f"k{scope.label}" if scope.label else f"t{tenant_id}"


def _remember(scope: Scope, tenant_id: int, result: list[Any], headers: Headers, now: int) -> None:
    """An RPM refusal holds until the bucket has a whole request again: refuse until then in-process."""
    limit = scope.limits.rpm or 0
    reset_ms = int(result[5])  # a refusal reports the refusing scope's figures
    message = (
        f"Rate limit reached for {f'API key {scope.label}' if scope.label else 'your organisation'} on "
        f"requests per min (RPM): Limit {limit}."
    )
    deny_remember(
        _tag(scope, tenant_id),
        Denial(
            until_ms=now + int(result[2]),
            full_ms=now + reset_ms,
            limit=limit,
            message=message,
            token_headers=tuple(h for h in headers if h[0].endswith(b"-tokens")),
        ),
    )


def _capped(limits: Limits) -> bool:
    return limits.monthly_budget is not None or limits.monthly_token_cap is not None


async def _seed(schema: str, key_prefix: str, now: int) -> tuple[int, int]:
    """Month-to-date spend (units) and tokens of a scope, from the ledger: after Redis lost its counters,
    or on the first request of a month."""
    from gateway.limits.usage import month_usage_in_thread

    _, start, end = period_of(now)
    spent, used_tokens = await sync_to_async(month_usage_in_thread)(schema, key_prefix, start, end)
    return to_units(spent), used_tokens


def _redis_down(error: Exception | None) -> None:
    if error is not None:
        log.warning("limits: cannot check limits (%s); failing %s", type(error).__name__, _mode())
    if _mode() == "closed":
        raise ApiError(
            503,
            "Rate limits cannot be checked right now, so the request was not sent. Please retry shortly.",
            code="limits_unavailable",
            headers=((b"retry-after", b"1"),),
        )
    return


def _mode() -> str:
    mode: str = settings.GATEHOUSE_LIMITS_REDIS_DOWN
    return mode


def settle_figures(event: UsageEvent | None) -> dict[str, Any]:
    """What a request used, as the limiter settles it: price and tokens, and what reached a provider."""
    tokens = event.input_tokens + event.output_tokens if event else 0
    return {
        "price": event.price if event else Decimal(0),
        "tokens": tokens,
        "provider_tokens": tokens if event is not None and event.cache_status == "miss" else 0,
    }


def limits_settle_later(admission: Admission, *, price: Decimal, tokens: int, provider_tokens: int) -> None:
    """After the last byte: free the request's slot and reservation and count what it used (`price`,
    `tokens` against the monthly budgets; `provider_tokens`, what a provider processed, against TPM)."""
    inflight_done(_tag(scope, admission.tenant_id) for scope in admission.scopes)
    keys, args = settle_call(admission, price, tokens, provider_tokens)
    _later(_settle(keys, args, admission.request_id))


def limits_settle_piggyback(
    admission: Admission, *, price: Decimal, tokens: int, provider_tokens: int
) -> Piggyback:
    """The settle as a command to send in the same round trip as the request's usage event (what
    `limits_settle_later` does, one Redis round trip fewer); if that fails, it is retried on its own (the
    script is idempotent per request)."""
    inflight_done(_tag(scope, admission.tenant_id) for scope in admission.scopes)
    keys, args = settle_call(admission, price, tokens, provider_tokens)

    def retry(error: BaseException) -> None:
        log.info("limits: settling %s on its own (%s)", admission.request_id, type(error).__name__)
        _later(_settle(keys, args, admission.request_id))

    return Piggyback(("EVALSHA", _SHA["settle"], len(keys), *keys, *args), retry)


def _later(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


def settle_call(
    admission: Admission, price: Decimal, tokens: int, provider_tokens: int
) -> tuple[list[str], list[str | int]]:
    """The keys and arguments of settle.lua for `admission` with these figures (the reaper uses it too)."""
    args: list[str | int] = [
        now_ms(),
        admission.request_id,
        to_units(price),
        tokens,
        provider_tokens - admission.tokens_taken,
        admission.tenant_id,
        admission.period,
    ]
    for scope in admission.scopes:
        lim = scope.limits
        args += [
            _arg(lim.tpm),
            _arg(lim.monthly_budget, money=True),
            _arg(lim.monthly_token_cap),
            lim.soft_percent,
            scope.label,
        ]
    keys = [key for scope in admission.scopes for key in scope.keys]
    marker = settled_marker(admission.tenant_id, admission.request_id)
    return [*keys, admission.open_key, marker, ALERT_STREAM], args


async def _settle(keys: list[str], args: list[str | int], request_id: str) -> None:
    try:
        async with asyncio.timeout(max(settings.GATEHOUSE_LIMITS_TIMEOUT, 1.0)):
            await hot_redis().evalsha(_SHA["settle"], _SOURCE["settle"], keys, args)
    except (RedisError, OSError, TimeoutError):
        # The lease frees the slot and the reservation later; the ledger still has the usage.
        log.warning("limits: could not settle request %s", request_id, exc_info=True)


# -- answers -----------------------------------------------------------------------------------------------
def _headers(result: list[Any]) -> Headers:
    headers: list[tuple[bytes, bytes]] = []
    for kind, offset in (("requests", 3), ("tokens", 6)):
        limit, remaining, reset = (int(v) for v in result[offset : offset + 3])
        if limit >= 0:
            headers += [
                (f"x-ratelimit-limit-{kind}".encode(), str(limit).encode()),
                (f"x-ratelimit-remaining-{kind}".encode(), str(remaining).encode()),
                (f"x-ratelimit-reset-{kind}".encode(), duration(reset).encode()),
            ]
    return tuple(headers)


def _refusal(
    code: int, scope: Scope, result: list[Any], headers: Headers, period_end: datetime, now: int
) -> ApiError:
    who = f"API key {scope.label}" if scope.label else "your organisation"
    retry_ms = int(result[2])
    used = result[9].decode() if isinstance(result[9], bytes) else str(result[9])
    cap = result[10].decode() if isinstance(result[10], bytes) else str(result[10])
    if code in (BUDGET, TOKEN_CAP):
        resets = period_end.strftime("%Y-%m-%d")
        retry_ms = max(int(period_end.timestamp() * 1000) - now, 1000)
        if code == BUDGET:
            what = f"the monthly budget of {who} ({from_units(cap)}; {from_units(used)} spent so far)"
        else:
            what = f"the monthly token cap of {who} ({cap} tokens; {used} used so far)"
        message = (
            f"This request could exceed {what}: its worst case (prompt plus max_tokens at the price of the "
            f"most expensive model that may serve it) does not fit what is left. The budget resets on "
            f"{resets} (UTC); lowering max_tokens may let smaller requests through."
        )
        error_type = code_name = "insufficient_quota"
    elif code == CONCURRENCY:
        message = (
            f"Too many requests in flight for {who}: the limit is {cap} at a time. Please retry shortly."
        )
        error_type, code_name = "requests", "concurrency_limit_exceeded"
    elif code == TOO_LARGE:
        message = (
            f"Request too large for {who} on tokens per min (TPM): Limit {cap}, Requested {used}. "
            f"The input or output tokens must be reduced in order to run successfully."
        )
        return ApiError(429, message, code="rate_limit_exceeded", error_type="tokens", headers=headers)
    else:
        kind, short = ("requests", "RPM") if code == RPM else ("tokens", "TPM")
        message = (
            f"Rate limit reached for {who} on {kind} per min ({short}): Limit {cap}, Used {used}. "
            f"Please try again in {duration(retry_ms)}."
        )
        error_type, code_name = kind, "rate_limit_exceeded"
    retry_after = (
        (b"retry-after", str(max(1, math.ceil(retry_ms / 1000))).encode()),
        (b"retry-after-ms", str(max(retry_ms, 1)).encode()),
    )
    return ApiError(429, message, code=code_name, error_type=error_type, headers=headers + retry_after)
