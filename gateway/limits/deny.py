"""A web process's memory of the scopes that are out of requests per minute, to refuse them without Redis.

Once admit.lua refuses a scope (a tenant or an API key) for its RPM, no request of that scope can be admitted
before its bucket holds a whole request again, at the refusal's Retry-After: other processes only ever take
from the bucket, and a change of limits clears this memory (with the principal caches). Until then this
process answers 429 right after authentication, before the body is parsed, the PII policy applied, the
request routed or Redis asked, and without a ledger row (the refusals are counted in
gatehouse_requests_refused_locally_total). So a tenant flooding far past its limit costs the gateway little.
Only RPM is remembered: a TPM, concurrency or budget refusal can end early (settled requests give back).

Likewise for requests in flight: the requests this process itself admitted and has not yet settled are a
lower bound of the scope's count in Redis, so when they alone reach the scope's concurrency limit the
request is refused in-process (exact; with several processes it catches fewer cases and Redis the rest).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.api.errors import ApiError
from gateway.limits.clock import duration, now_ms

MAX_SCOPES = 50_000


@dataclass(frozen=True, slots=True)
class Denial:
    until_ms: int  # the bucket holds a whole request again
    full_ms: int  # the bucket is full again
    limit: int
    message: str
    token_headers: tuple[tuple[bytes, bytes], ...]


_denied: dict[str, Denial] = {}
_inflight: Counter[str] = Counter()  # scope tag -> requests this process admitted and has not settled


def deny_remember(tag: str, denial: Denial) -> None:
    if len(_denied) >= MAX_SCOPES:
        _denied.clear()
    _denied[tag] = denial


def deny_check(scopes: Iterable[tuple[str, int | None]]) -> ApiError | None:
    """The 429 for the first scope (tag, concurrency limit) known to refuse, or None (ask Redis)."""
    if not _denied and not _inflight:
        return None
    for tag, concurrency in scopes:
        if concurrency is not None and _inflight[tag] >= concurrency:
            who = f"API key {tag[1:]}" if tag.startswith("k") else "your organisation"
            return ApiError(
                429,
                f"Too many requests in flight for {who}: the limit is {concurrency} at a time. "
                "Please retry shortly.",
                code="concurrency_limit_exceeded",
                error_type="requests",
                headers=((b"retry-after", b"1"), (b"retry-after-ms", b"1000")),
                quiet=True,
            )
        denial = _denied.get(tag)
        if denial is None:
            continue
        now = now_ms()
        if now >= denial.until_ms:
            _denied.pop(tag, None)
            continue
        return _refusal(denial, now)
    return None


def inflight_add(tags: Iterable[str]) -> None:
    for tag in tags:
        _inflight[tag] += 1


def inflight_done(tags: Iterable[str]) -> None:
    for tag in tags:
        _inflight[tag] -= 1
        if _inflight[tag] <= 0:
            del _inflight[tag]


def deny_clear() -> None:
    _denied.clear()


def _refusal(denial: Denial, now: int) -> ApiError:
    retry_ms = denial.until_ms - now
    headers = (
        (b"x-ratelimit-limit-requests", str(denial.limit).encode()),
        (b"x-ratelimit-remaining-requests", b"0"),
        (b"x-ratelimit-reset-requests", duration(max(denial.full_ms - now, 0)).encode()),
        *denial.token_headers,
        (b"retry-after", str(max(1, math.ceil(retry_ms / 1000))).encode()),
        (b"retry-after-ms", str(retry_ms).encode()),
    )
    return ApiError(
        429,
        f"{denial.message} Please try again in {duration(retry_ms)}.",
        code="rate_limit_exceeded",
        error_type="requests",
        headers=headers,
        quiet=True,
    )
