"""The limiter's clock: wall time in milliseconds (or a test clock shared by every process), and durations
as OpenAI writes them.

With GATEHOUSE_TEST_CLOCK_FILE set (tests only), the time is read from that file (epoch milliseconds, one
integer) on every call, so a test can freeze and move time for several web processes at once; a missing or
empty file means real time.
"""

from __future__ import annotations

import time

from django.conf import settings


def now_ms() -> int:
    path: str = settings.GATEHOUSE_TEST_CLOCK_FILE
    if path:
        try:
            with open(path) as file:
                text = file.read().strip()
        except FileNotFoundError:
            text = ""
        if text:
            return int(text)
    return int(time.time() * 1000)


def duration(ms: int) -> str:
    """A duration as OpenAI writes it in x-ratelimit-reset-*: 20ms, 1.5s, 6m0s."""
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m" + (f"{rest:.3f}".rstrip("0").rstrip(".") or "0") + "s"
