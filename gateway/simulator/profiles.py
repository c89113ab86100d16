"""Per-model behaviour of the simulator and the control state that changes it at run time.

Every model name has a `Profile`: the five catalogue models have their own defaults, any other name gets
sim/fast's. `ControlState.apply()` takes the JSON of `POST /_control` and raises `ControlError` (answered
with HTTP 400) on unknown keys or bad values, without changing anything.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

JSON = dict[str, Any]

DEFAULT_SEED = 0
WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class Profile:
    """How one model behaves. Times in milliseconds or seconds as named; rates are probabilities."""

    ttft_ms: float = 5.0  # until the first token (non-streaming: until the whole answer starts)
    tokens_per_s: float | None = 2000.0  # stream pacing; None: as fast as possible
    error_rate: float = 0.0  # share of requests answered with HTTP 500
    rate_429: float = 0.0  # share of requests answered with HTTP 429 + Retry-After
    retry_after_s: float = 1.0
    outage: bool = False  # every request answered with HTTP 503 at once
    cut_after_chunks: int | None = None  # streams drop the connection after this many content chunks
    hang: bool = False  # requests are accepted and never answered
    output_tokens: int = 16  # answer length in words, unless max_tokens is smaller


DEFAULTS: dict[str, Profile] = {
    "sim/fast": Profile(ttft_ms=5, tokens_per_s=2000),
    "sim/smart": Profile(ttft_ms=30, tokens_per_s=400, output_tokens=32),
    "sim/code": Profile(ttft_ms=15, tokens_per_s=800, output_tokens=24),
    "sim/vision": Profile(ttft_ms=20, tokens_per_s=600),
    "sim/echo": Profile(ttft_ms=1, tokens_per_s=None),
}
FALLBACK = "sim/fast"
CATALOGUE: tuple[str, ...] = tuple(DEFAULTS)
ECHO = "sim/echo"

_SETTING_NAMES = frozenset(f.name for f in fields(Profile))
_COMMAND_NAMES = frozenset({"model", "reset", "seed"})


class ControlError(ValueError):
    """A `/_control` request that cannot be applied; the message says why."""


def _number(key: str, value: object, *, low: float, high: float, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlError(f"{key} must be a number")
    if value < low or (low_open and value == low) or value > high:
        raise ControlError(f"{key} must be between {low} and {high}{' (exclusive)' if low_open else ''}")
    return float(value)


def _integer(key: str, value: object, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ControlError(f"{key} must be an integer from {low} to {high}")
    return value


def _flag(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ControlError(f"{key} must be true or false")
    return value


def _validate_setting(key: str, value: object) -> object:
    """The checked value of one Profile field."""
    if key in ("outage", "hang"):
        return _flag(key, value)
    if key in ("error_rate", "rate_429"):
        return _number(key, value, low=0.0, high=1.0)
    if key == "ttft_ms":
        return _number(key, value, low=0.0, high=3_600_000.0)
    if key == "retry_after_s":
        return _number(key, value, low=0.0, high=86_400.0)
    if key == "tokens_per_s":
        return None if value is None else _number(key, value, low=0.0, high=1e9, low_open=True)
    if key == "cut_after_chunks":
        return None if value is None else _integer(key, value, low=0, high=1_000_000)
    return _integer(key, value, low=1, high=100_000)  # output_tokens


class ControlState:
    """The profiles in effect and the seeded RNG that decides injected faults.

    One instance per simulator process; the event loop is single-threaded, so no locking.
    """

    def __init__(self) -> None:
        self._profiles: dict[str, Profile] = dict(DEFAULTS)
        self._fallback = DEFAULTS[FALLBACK]
        self.seed = DEFAULT_SEED
        self._rng = random.Random(DEFAULT_SEED)  # noqa: S311 - simulated faults, not security

    def profile(self, model: str) -> Profile:
        """The profile for any model name: its own if set, else sim/fast's defaults (or `*` overrides)."""
        return self._profiles.get(model, self._fallback)

    def roll(self, rate: float) -> bool:
        """True with probability `rate`; draws from the RNG only when the rate is above zero."""
        return rate > 0 and self._rng.random() < rate

    def apply(self, payload: object) -> None:
        """Apply one control request: `reset`, then `seed`, then settings for `model` (or `*`: all).

        Raises ControlError before changing anything when a key is unknown or a value is out of range.
        """
        if not isinstance(payload, dict):
            raise ControlError("the body must be a JSON object")
        unknown = sorted(set(payload) - _SETTING_NAMES - _COMMAND_NAMES)
        if unknown:
            raise ControlError(f"unknown keys: {', '.join(unknown)}")
        changes = {
            key: _validate_setting(key, value) for key, value in payload.items() if key in _SETTING_NAMES
        }
        model = payload.get("model")
        if model is not None and (not isinstance(model, str) or not model):
            raise ControlError("model must be a non-empty string")
        reset = _flag("reset", payload.get("reset", False))
        seed = payload.get("seed")
        if seed is not None:
            seed = _integer("seed", seed, low=0, high=2**63 - 1)
        if changes and model is None:
            raise ControlError('settings need a "model" (a model name, or "*" for all)')
        if not (changes or reset or seed is not None):
            raise ControlError('nothing to do: give settings with "model", "reset" or "seed"')
        if reset:
            self._reset(model)
        if seed is not None:
            self.seed = seed
            self._rng.seed(seed)
        if changes and model is not None:
            self._update(model, changes)

    def _reset(self, model: str | None) -> None:
        if model is None or model == WILDCARD:
            self._profiles = dict(DEFAULTS)
            self._fallback = DEFAULTS[FALLBACK]
            self.seed = DEFAULT_SEED
            self._rng.seed(DEFAULT_SEED)
        elif model in DEFAULTS:
            self._profiles[model] = DEFAULTS[model]
        else:
            self._profiles.pop(model, None)

    def _update(self, model: str, changes: JSON) -> None:
        if model == WILDCARD:
            self._profiles = {name: replace(p, **changes) for name, p in self._profiles.items()}
            self._fallback = replace(self._fallback, **changes)
        else:
            self._profiles[model] = replace(self.profile(model), **changes)

    def snapshot(self) -> JSON:
        """The settings in effect, as `GET /_control` returns them."""
        return {
            "seed": self.seed,
            "models": {name: asdict(p) for name, p in self._profiles.items()},
            "other_models": asdict(self._fallback),
        }
