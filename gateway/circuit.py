"""A circuit breaker per provider model, shared by every web process through Redis.

closed -> open: `GATEHOUSE_CIRCUIT_FAILURES` retryable failures within `GATEHOUSE_CIRCUIT_WINDOW_SECONDS`.
open -> half-open: after `GATEHOUSE_CIRCUIT_OPEN_SECONDS`, one request (whichever process wins a Redis lock)
is let through as a probe. Its success closes the circuit; its failure opens it again for another period.

State lives in the Redis hash `gh:cb:<model>`; transitions are atomic Lua scripts. Each process reads the
states of a request's candidate models in one round trip and keeps them for
`GATEHOUSE_STATE_CACHE_SECONDS` (0.5 s), so the hot path usually makes no Redis call for this at all.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from redis.asyncio import Redis

from config.redis import async_redis_client

log = logging.getLogger(__name__)

PREFIX = "gh:cb:"

# KEYS[1] = state hash; ARGV: now, window, threshold, open_seconds
_FAILURE = """
local s = redis.call('HMGET', KEYS[1], 'state', 'failures', 'window_start')
local now = tonumber(ARGV[1])
local state = s[1] or 'closed'
if state == 'half_open' or state == 'open' then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_until', now + tonumber(ARGV[4]), 'failures', 0)
  redis.call('EXPIRE', KEYS[1], 86400)
  return 'open'
end
local failures = tonumber(s[2] or '0')
local start = tonumber(s[3] or '0')
if now - start > tonumber(ARGV[2]) then failures = 0; start = now end
failures = failures + 1
if failures >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_until', now + tonumber(ARGV[4]), 'failures', 0,
             'window_start', now)
  state = 'open'
else
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', failures, 'window_start', start)
end
redis.call('EXPIRE', KEYS[1], 86400)
return state
"""

# KEYS[1] = state hash, KEYS[2] = probe lock; ARGV: now, probe_ttl_ms. Returns 1 when the caller may probe.
_PROBE = """
local s = redis.call('HMGET', KEYS[1], 'state', 'opened_until')
if s[1] ~= 'open' and s[1] ~= 'half_open' then return 1 end
if tonumber(ARGV[1]) < tonumber(s[2] or '0') then return 0 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  redis.call('HSET', KEYS[1], 'state', 'half_open')
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class CircuitState:
    state: str  # closed / open / half_open
    failures: int
    opened_until: float

    def blocks(self, now: float) -> bool:
        """True while the circuit refuses calls without asking Redis (open, before its time is up)."""
        return self.state == "open" and now < self.opened_until


CLOSED = CircuitState("closed", 0, 0.0)


class Breakers:
    """Circuit states for one event loop, cached briefly."""

    def __init__(self) -> None:
        self.cache: dict[str, tuple[CircuitState, float]] = {}

    def _redis(self) -> Redis:
        return async_redis_client()

    async def states(self, models: list[str]) -> dict[str, CircuitState]:
        """Current states; stale or missing ones are fetched in one pipelined round trip."""
        now = time.monotonic()
        ttl = settings.GATEHOUSE_STATE_CACHE_SECONDS
        stale = [m for m in models if m not in self.cache or now - self.cache[m][1] > ttl]
        if stale:
            try:
                pipe = self._redis().pipeline(transaction=False)
                for model in stale:
                    pipe.hmget(PREFIX + model, "state", "failures", "opened_until")
                rows = await pipe.execute()
            except Exception:
                log.warning("circuit states unavailable (Redis); treating circuits as closed")
                rows = [[None, None, None]] * len(stale)
            for model, (state, failures, until) in zip(stale, rows, strict=True):
                self.cache[model] = (
                    CircuitState(
                        state.decode() if state else "closed",
                        int(failures or 0),
                        float(until or 0),
                    ),
                    now,
                )
        return {m: self.cache[m][0] for m in models}

    async def allow(self, model: str, state: CircuitState) -> bool:
        """May we call `model` now? Closed: yes. Open and cooling: no. Open and due: only one probe."""
        if state.state == "closed":
            return True
        now = time.time()
        if state.blocks(now):
            return False
        probe_ms = int(settings.GATEHOUSE_FIRST_BYTE_TIMEOUT * 1000) + 1000
        try:
            allowed = await self._redis().eval(
                _PROBE, 2, PREFIX + model, f"{PREFIX}{model}:probe", now, probe_ms
            )
        except Exception:
            return True
        return bool(allowed)

    async def failure(self, model: str) -> None:
        try:
            state = await self._redis().eval(
                _FAILURE,
                1,
                PREFIX + model,
                time.time(),
                settings.GATEHOUSE_CIRCUIT_WINDOW_SECONDS,
                settings.GATEHOUSE_CIRCUIT_FAILURES,
                settings.GATEHOUSE_CIRCUIT_OPEN_SECONDS,
            )
        except Exception:
            log.warning("could not record a circuit failure for %s", model)
            return
        self.cache.pop(model, None)
        if state == b"open":
            log.warning("circuit open for %s", model)

    async def success(self, model: str, state: CircuitState) -> None:
        """Close the circuit after a successful call, if it was not plainly closed."""
        if state.state == "closed" and state.failures == 0:
            return
        try:
            await self._redis().delete(PREFIX + model, f"{PREFIX}{model}:probe")
        except Exception:
            return
        self.cache.pop(model, None)


async def circuit_snapshot(models: list[str]) -> dict[str, CircuitState]:
    """States straight from Redis (for /metrics and tests), bypassing the cache."""
    return await Breakers().states(models)
