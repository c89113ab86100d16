"""Server-Sent Events framing, and `Frame`: one event of a simulated stream with its place in the pacing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Frame:
    """One SSE event, ready to send.

    `step` is the token position it belongs to: the sender waits until `ttft + step / tokens_per_s` before
    sending it. `content` marks frames that carry generated tokens (counted by `cut_after_chunks`).
    """

    data: bytes
    step: int = 0
    content: bool = False


def sse(payload: Any, event: str | None = None) -> bytes:
    """`data: <json>` (preceded by `event: <name>` when given), ended by a blank line."""
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


DONE = b"data: [DONE]\n\n"
