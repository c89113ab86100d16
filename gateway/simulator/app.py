"""The provider simulator as a raw ASGI application.

Routes:
    POST /v1/chat/completions   OpenAI Chat Completions (JSON, or SSE with `stream: true`)
    POST /v1/messages           Anthropic Messages (JSON, or SSE with `stream: true`)
    GET  /v1/models             the catalogue, as an OpenAI list
    GET  /_control              the settings in effect
    POST /_control              change them (see `ControlState.apply`)
    GET  /                      what this server is

Faults are injected per model in this order: hang, outage (503), rate_429 (429 + Retry-After),
error_rate (500); then the answer waits for ttft_ms and is paced at tokens_per_s.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson

from gateway.simulator import anthropic_wire, openai_wire
from gateway.simulator.answers import Answer, answer
from gateway.simulator.asgi import (
    BodyTooLargeError,
    DisconnectWatcher,
    Headers,
    Pacer,
    Receive,
    Scope,
    Send,
    read_body,
    retry_after_headers,
    send_json,
    send_stream,
)
from gateway.simulator.parsing import BadRequestError, SimRequest, parse_anthropic, parse_openai
from gateway.simulator.profiles import CATALOGUE, ControlError, ControlState, Profile
from gateway.simulator.sse import Frame


@dataclass(frozen=True, slots=True)
class WireFormat:
    """One provider API: how to read a request and write answers and errors."""

    parse: Callable[[bytes], SimRequest]
    error: Callable[[int, str, str | None], bytes]
    body: Callable[[SimRequest, Answer], bytes]
    frames: Callable[[SimRequest, Answer], Iterator[Frame]]
    request_id_header: bytes


OPENAI = WireFormat(
    parse_openai,
    openai_wire.error_body,
    openai_wire.completion_body,
    openai_wire.stream_frames,
    b"x-request-id",
)
ANTHROPIC = WireFormat(
    parse_anthropic,
    anthropic_wire.error_body,
    anthropic_wire.message_body,
    anthropic_wire.stream_frames,
    b"request-id",
)
ABOUT = {
    "name": "Gatehouse provider simulator",
    "note": "A fake upstream for development, tests and benchmarks. It answers with generated text.",
    "models": list(CATALOGUE),
    "endpoints": ["/v1/chat/completions", "/v1/messages", "/v1/models", "/_control"],
}


class SimulatorApp:
    """An ASGI 3 application. Each instance has its own `ControlState`."""

    def __init__(self, control: ControlState | None = None) -> None:
        self.control = control or ControlState()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        route = (scope["method"], scope["path"].rstrip("/") or "/")
        if route == ("POST", "/v1/chat/completions"):
            await self._api(OPENAI, receive, send)
        elif route == ("POST", "/v1/messages"):
            await self._api(ANTHROPIC, receive, send)
        elif route == ("GET", "/v1/models"):
            await send_json(send, 200, openai_wire.models_body(CATALOGUE))
        elif route == ("GET", "/_control"):
            await send_json(send, 200, self.control.snapshot())
        elif route == ("POST", "/_control"):
            await self._control(receive, send)
        elif route == ("GET", "/"):
            await send_json(send, 200, ABOUT)
        else:
            known = {"/v1/chat/completions", "/v1/messages", "/v1/models", "/_control", "/"}
            status = 405 if route[1] in known else 404
            message = f"Invalid URL ({scope['method']} {scope['path']})"
            wire = ANTHROPIC if route[1] == "/v1/messages" else OPENAI
            await send_json(send, status, wire.error(status, message, None))

    async def _control(self, receive: Receive, send: Send) -> None:
        try:
            payload = orjson.loads(await read_body(receive))
            self.control.apply(payload)
        except (orjson.JSONDecodeError, BodyTooLargeError):
            await send_json(send, 400, {"error": {"message": "the body must be a JSON object"}})
            return
        except ControlError as error:
            await send_json(send, 400, {"error": {"message": str(error)}})
            return
        await send_json(send, 200, self.control.snapshot())

    async def _api(self, wire: WireFormat, receive: Receive, send: Send) -> None:
        try:
            request = wire.parse(await read_body(receive))
        except BodyTooLargeError:
            await send_json(send, 413, wire.error(413, "Request body too large.", None))
            return
        except BadRequestError as error:
            await send_json(send, 400, wire.error(400, error.message, error.param))
            return
        profile = self.control.profile(request.model)
        watcher = DisconnectWatcher(receive)
        try:
            await self._answer(wire, request, profile, watcher, send)
        finally:
            watcher.close()

    async def _answer(
        self, wire: WireFormat, request: SimRequest, profile: Profile, watcher: DisconnectWatcher, send: Send
    ) -> None:
        if profile.hang:
            await watcher.wait()
            return
        fault = self._fault(request.model, profile)
        if fault is not None:
            status, message, extra = fault
            await send_json(send, status, wire.error(status, message, None), extra)
            return
        result = answer(request, profile)
        pacer = Pacer(profile.ttft_ms, profile.tokens_per_s)
        headers: Headers = [(wire.request_id_header, f"req_sim{uuid.uuid4().hex[:20]}".encode())]
        if request.stream:
            frames = wire.frames(request, result)
            await send_stream(
                send,
                frames,
                pacer=pacer,
                watcher=watcher,
                headers=headers,
                cut_after_chunks=profile.cut_after_chunks,
            )
        elif await pacer.until(max(result.steps - 1, 0), watcher):
            await send_json(send, 200, wire.body(request, result), headers)

    def _fault(self, model: str, profile: Profile) -> tuple[int, str, Headers] | None:
        """The injected failure for this request, if any: (status, message, extra headers)."""
        if profile.outage:
            return 503, f"{model} is unavailable (simulated outage).", []
        if self.control.roll(profile.rate_429):
            return (
                429,
                f"Rate limit reached for {model} (simulated).",
                retry_after_headers(profile.retry_after_s),
            )
        if self.control.roll(profile.error_rate):
            return 500, f"The server had an error while processing your request (simulated, {model}).", []
        return None


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app() -> SimulatorApp:
    """A fresh simulator with default settings."""
    return SimulatorApp()
