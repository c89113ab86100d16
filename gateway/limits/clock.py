"""The limiter's clock: wall time in milliseconds, or a test clock shared by every process.

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
