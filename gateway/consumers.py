"""The /v1 endpoints: Channels AsyncHttpConsumers speaking OpenAI's wire format.

Each request is answered by a task that runs beside the consumer's receive loop, so a client that goes away
mid-stream is noticed at once: the task is cancelled, which closes the upstream call, and what was
delivered is still metered. Every error is an OpenAI error body, never an HTML page.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import suppress
from typing import Any, ClassVar

from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from django.conf import settings

from gateway.access_log import access_log, access_log_unauthenticated
from gateway.api.errors import ApiError
from gateway.bounds import label_bounded
from gateway.limits.service import Admission, limits_settle_later, limits_settle_piggyback, settle_figures
from gateway.metering.emit import Piggyback
from gateway.metering.events import UsageEvent
from gateway.metering.refusals import refusal_count
from gateway.metrics import metrics_record
from gateway.state import Principal, hot_state

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]


class GatewayConsumer(AsyncHttpConsumer):  # type: ignore[misc]
    """Base of the /v1 consumers: body limit, request id, authentication, errors, disconnect handling."""

    channel_layer_alias = "none"  # plain request/response: no channel layer round trips
    methods: ClassVar[tuple[str, ...]] = ("GET",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.size = 0
        self.task: asyncio.Task[None] | None = None
        self.response_started = False
        self.response_done = False
        self.client_gone = False
        self.started = time.perf_counter()
        self.started_ms = int(time.time() * 1000)
        self.request_id = f"req_{uuid.uuid4().hex}"  # ours alone: the ledger's, the limiter's, the cache's
        self.client_request_id = ""  # the client's x-request-id: a bounded label, echoed and stored
        self.usage_event: UsageEvent | None = None  # set by the usage builder, once
        self.admission: Admission | None = None  # set when the limiter let the request in
        self.settled = False  # the admission was settled (with the usage event, or at the end)
        self.limit_headers: tuple[tuple[bytes, bytes], ...] = ()  # x-ratelimit-*, on every response

    # -- ASGI plumbing --------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """AsyncConsumer.__call__ without a channel layer: read ASGI messages and dispatch them in turn.

        Channels' own loop wraps every receive in a new task and waits on a set of them; with one source of
        messages that is pure overhead on the hot path.
        """
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        with suppress(StopConsumer):
            while True:
                await self.dispatch(await receive())

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch minus `aclose_old_connections()`: that is a thread-pool round trip per message,
        and the hot path never uses a database connection on the event loop's thread (cold loads run in
        sync_to_async and close stale connections themselves)."""
        kind = message["type"]
        if kind == "http.request":
            await self.http_request(message)
        elif kind == "http.disconnect":
            await self.http_disconnect(message)

    async def http_request(self, message: dict[str, Any]) -> None:
        if self.task is not None or self.response_done:
            return
        chunk = message.get("body", b"")
        self.size += len(chunk)
        self.body.append(chunk)
        if self.size > settings.GATEHOUSE_MAX_BODY_BYTES:
            self.client_request_id = self._client_request_id()
            limit = settings.GATEHOUSE_MAX_BODY_BYTES
            await self.send_error(
                ApiError(
                    413, f"Request body too large: the limit is {limit} bytes.", code="request_too_large"
                )
            )
            return
        if not message.get("more_body"):
            self.task = asyncio.get_running_loop().create_task(self._run(b"".join(self.body)))

    async def http_disconnect(self, message: dict[str, Any]) -> None:
        if self.task is not None and not self.task.done():
            if not self.response_done:
                self.client_gone = True
                self.task.cancel()
            with suppress(asyncio.CancelledError):
                await self.task
        raise StopConsumer

    async def _run(self, raw: bytes) -> None:
        self.client_request_id = self._client_request_id()
        try:
            if self.scope["method"] not in self.methods:
                raise ApiError(
                    405, f"Method {self.scope['method']} is not allowed here.", code="method_not_allowed"
                )
            await self.respond(raw)
        except ApiError as error:
            if error.tally is not None and self.usage_event is None:
                schema, tenant_id, key_prefix = error.tally
                refusal_count(
                    schema=schema,
                    tenant_id=tenant_id,
                    key_prefix=key_prefix,
                    code=error.code or "refused",
                    http_status=error.status,
                )
            if self.usage_event is None and not error.quiet:  # a usage event is logged with it, below
                access_log_unauthenticated(
                    request_id=self.request_id,
                    status=error.status,
                    code=error.code or "",
                    path=self.scope["path"],
                )
            await self.send_error(error)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unhandled error in %s (request %s)", type(self).__name__, self.request_id)
            await self.send_error(
                ApiError(500, "The gateway had an internal error. It has been logged.", code="internal_error")
            )
        finally:
            # Off the critical path: the client has its last byte (or is gone) before we log and count.
            if self.admission is not None and not self.settled:
                self.settled = True
                self._settle(self.admission, self.usage_event)
            if self.usage_event is not None:
                metrics_record(self.usage_event)
                access_log(self.usage_event)

    async def respond(self, raw: bytes) -> None:
        raise NotImplementedError

    @staticmethod
    def _settle(admission: Admission, event: UsageEvent | None) -> None:
        """Give the limiter the request's real figures (nothing, if it ended before any usage)."""
        limits_settle_later(admission, **settle_figures(event))

    def settle_with(self, event: UsageEvent) -> Piggyback | None:
        """The admission's settle, to ride with the usage event's XADD (once; None without an admission)."""
        if self.admission is None or self.settled:
            return None
        self.settled = True
        return limits_settle_piggyback(self.admission, **settle_figures(event))

    # -- helpers --------------------------------------------------------------------------------------
    def header(self, name: bytes) -> str | None:
        for key, value in self.scope["headers"]:
            if key == name:
                return str(value.decode("latin-1"))
        return None

    def _client_request_id(self) -> str:
        """The client's own request id (`X-Client-Request-Id`, as OpenAI's API takes it, else
        `x-request-id`), bounded: a correlation label, never the request's identity."""
        return label_bounded(self.header(b"x-client-request-id") or self.header(b"x-request-id"))

    def base_headers(self, content_type: bytes = b"application/json") -> Headers:
        headers = [
            (b"content-type", content_type),
            (b"x-request-id", self.request_id.encode()),
            *self.limit_headers,
        ]
        if self.client_request_id:
            headers.append((b"x-client-request-id", self.client_request_id.encode()))
        return headers

    async def start(self, status: int, headers: Headers) -> None:
        self.response_started = True
        await self.send_headers(status=status, headers=headers)

    async def finish(self, body: bytes) -> None:
        self.response_done = True
        await self.send_body(body, more_body=False)

    async def send_error(self, error: ApiError) -> None:
        if self.response_done:
            return
        if self.response_started:  # a stream is open: end it with an error event, never a clean [DONE]
            await self.finish(b"data: " + error.body() + b"\n\n")
            return
        await self.start(error.status, [*self.base_headers(), *error.headers])
        await self.finish(error.body())

    async def authenticate(self) -> Principal:
        """The caller's principal from `Authorization: Bearer <key>` or `x-api-key`. Raises ApiError."""
        key = self.header(b"x-api-key")
        authorization = self.header(b"authorization")
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                key = value.strip()
        if not key:
            raise ApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the x-api-key header.",
                code="missing_api_key",
            )
        principal = await hot_state().principal(key)
        self._check_host(principal)
        return principal

    def _check_host(self, principal: Principal) -> None:
        """On a tenant's own host, only that tenant's keys are accepted (on public hosts, the key decides)."""
        host = (self.header(b"host") or "").rsplit(":", 1)[0].lower()
        suffix = f".{settings.GATEHOUSE_BASE_DOMAIN}"
        if host in settings.GATEHOUSE_PUBLIC_HOSTS or not host.endswith(suffix):
            return
        if host[: -len(suffix)] != principal.tenant_slug:
            raise ApiError(
                403,
                "This API key does not belong to the organisation of this host.",
                code="wrong_tenant_host",
                tally=(principal.schema, principal.tenant_id, principal.key_prefix),
            )


class NotFoundConsumer(GatewayConsumer):
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

    async def respond(self, raw: bytes) -> None:
        raise ApiError(404, f"Invalid URL ({self.scope['method']} {self.scope['path']})", code="not_found")
