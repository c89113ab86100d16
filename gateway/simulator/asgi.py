"""Raw ASGI plumbing for the simulator: reading the body, sending whole responses, noticing a client that
went away, and sending paced streams that can be cut short on purpose."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson

from gateway.simulator.sse import Frame

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

MAX_BODY = 32 * 1024 * 1024
SIMULATOR_HEADER = (b"x-gatehouse-simulator", b"1")
# Sleeps shorter than this are skipped: frames that are due together go out together.
MIN_SLEEP_S = 0.001


class BodyTooLargeError(Exception):
    pass


async def read_body(receive: Receive) -> bytes:
    """The whole request body. Raises BodyTooLargeError past MAX_BODY."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BodyTooLargeError
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def send_bytes(send: Send, status: int, body: bytes, headers: Headers, content_type: bytes) -> None:
    head = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), SIMULATOR_HEADER]
    await send({"type": "http.response.start", "status": status, "headers": head + headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json(send: Send, status: int, body: Any, headers: Headers | None = None) -> None:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    await send_bytes(send, status, raw, headers or [], b"application/json")


class DisconnectWatcher:
    """Waits in the background for `http.disconnect`; start it only once the body has been read."""

    def __init__(self, receive: Receive) -> None:
        self._task = asyncio.ensure_future(self._watch(receive))

    @staticmethod
    async def _watch(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    @property
    def gone(self) -> bool:
        return self._task.done()

    async def wait(self, seconds: float | None = None) -> bool:
        """Wait up to `seconds` (None: forever) or until the client leaves; True if it has left."""
        await asyncio.wait([self._task], timeout=seconds)
        return self.gone

    def close(self) -> None:
        self._task.cancel()


class Pacer:
    """Token timing: step k is due `ttft_ms + k / tokens_per_s` after the request was read."""

    def __init__(self, ttft_ms: float, tokens_per_s: float | None) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._start = loop.time() + ttft_ms / 1000
        self._interval = 0.0 if tokens_per_s is None else 1 / tokens_per_s
        self._unslept = 0

    def delay(self, step: int) -> float:
        """Seconds until `step` is due (<= 0 when it is already)."""
        return self._start + step * self._interval - self._loop.time()

    async def until(self, step: int, watcher: DisconnectWatcher) -> bool:
        """Sleep until `step` is due; False if the client left meanwhile."""
        delay = self.delay(step)
        if delay < MIN_SLEEP_S:
            # Frames due at once go out back to back; yield now and then so that other streams move too.
            self._unslept += 1
            if self._unslept % 64 == 0:
                await asyncio.sleep(0)
            return not watcher.gone
        return not await watcher.wait(delay)


async def send_stream(
    send: Send,
    frames: Iterable[Frame],
    *,
    pacer: Pacer,
    watcher: DisconnectWatcher,
    headers: Headers,
    cut_after_chunks: int | None,
) -> None:
    """Send `frames` as an SSE response, each as its own body message, paced by `pacer`.

    The head goes out with the first frame (after the time to first token). Returns early, without
    ending the response, when the client leaves or before content frame `cut_after_chunks + 1`: the
    server then drops the connection, as a provider failing mid-stream would.
    """
    started = False
    sent = 0
    for frame in frames:
        if not await pacer.until(frame.step, watcher):
            return
        if frame.content:
            if cut_after_chunks is not None and sent >= cut_after_chunks:
                return
            sent += 1
        if not started:
            head = [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                SIMULATOR_HEADER,
            ]
            await send({"type": "http.response.start", "status": 200, "headers": head + headers})
            started = True
        await send({"type": "http.response.body", "body": frame.data, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def retry_after_headers(seconds: float) -> Headers:
    """Retry-After in whole seconds (rounded up, as HTTP requires) and OpenAI's exact retry-after-ms."""
    return [
        (b"retry-after", str(math.ceil(seconds)).encode()),
        (b"retry-after-ms", str(round(seconds * 1000)).encode()),
    ]
