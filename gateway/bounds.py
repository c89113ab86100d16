"""Bounding strings and numbers that come from clients (or from what they caused) before they reach Redis,
PostgreSQL or a log: lengths cut, NUL and control characters dropped, numbers clamped to what a column holds.

Everything here is linear in the input's length, and the input is cut to a small multiple of the limit first,
so a megabyte of hostile text costs as little as a short one.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

# C0 and C1 control characters (NUL among them) and DEL: PostgreSQL refuses NUL in text and jsonb, and
# none of them belongs in an identifier, a model name or a log field.
_CONTROL = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)])
_LABEL_REJECT = re.compile(r"[^\x21-\x7e]")  # a correlation label: printable ASCII without spaces

INT32_MAX = 2**31 - 1
INT16_MAX = 2**15 - 1
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: what a datetime can hold


def text_bounded(value: object, limit: int) -> str:
    """`value` as text of at most `limit` characters, without control characters or lone surrogates."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    if len(text) <= limit and text.isascii() and text.isprintable():
        return text  # the common case: nothing to clean
    text = text[: limit * 2]  # what is dropped below can only shorten it
    text = text.translate(_CONTROL)
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    return text[:limit]


def label_bounded(value: object, limit: int = 128) -> str:
    """A client's correlation label (e.g. its x-request-id): printable ASCII without spaces, at most `limit`
    characters; anything else is dropped. Never an identity: only stored, echoed and searched."""
    if not value:
        return ""
    text = value if isinstance(value, str) else str(value)
    return _LABEL_REJECT.sub("", text[: limit * 4])[:limit]


def int_bounded(value: object, low: int = 0, high: int = INT32_MAX) -> int:
    """`value` clamped to [low, high]; 0 (or `low`) for what is not an integer."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and math.isfinite(value):
            value = int(value)
        else:
            return max(low, 0) if low <= 0 <= high else low
    return min(max(value, low), high)


def optional_int_bounded(value: object, low: int = 0, high: int = INT32_MAX) -> int | None:
    return None if value is None else int_bounded(value, low, high)


def money_bounded(value: object, *, places: int = 8, digits: int = 16) -> Decimal:
    """A non-negative amount with `places` decimal places that a `DecimalField(max_digits=digits)` holds.

    Amounts are computed by the gateway, not sent by clients; anything out of range (negative, NaN,
    infinite, too large) is a bug upstream of here, stored as 0 or the largest value rather than refused."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return Decimal(0)
    if not amount.is_finite() or amount <= 0:
        return Decimal(0)
    quantum = Decimal(1).scaleb(-places)
    largest = Decimal(10) ** (digits - places) - quantum
    if amount > largest:
        return largest
    return amount.quantize(quantum)


def ratio_bounded(value: object) -> float | None:
    """A similarity in [-1, 1], or None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return min(max(float(value), -1.0), 1.0)
