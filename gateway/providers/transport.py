"""HTTP plumbing shared by the providers: sending with our three timeouts, mapping transport failures and
upstream statuses to ProviderError, and reading Server-Sent Events as they arrive."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator

import httpx
import orjson

from gateway.providers.base import ErrorKind, ProviderError, Timeouts


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); also OpenAI's retry-after-ms."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when: float = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(when - time.time(), 0.0)


def _kind_for_status(status: int) -> ErrorKind:
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status == 529:
        return "overloaded"
    if status >= 500 or status in (408, 409):
        return "server"
    return "bad_request"


def error_from_response(status: int, body: bytes, headers: httpx.Headers) -> ProviderError:
    """A ProviderError for an upstream error response, with the upstream's own message when it has one."""
    message = f"upstream answered HTTP {status}"
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = error["message"]
        elif isinstance(error, str):
            message = error
    return ProviderError(
        _kind_for_status(status), message[:500], status=status, retry_after=retry_after_seconds(headers)
    )


def error_from_exception(error: BaseException) -> ProviderError:
    if isinstance(error, ProviderError):
        return error
    if isinstance(error, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return ProviderError("timeout", f"connecting to upstream timed out ({type(error).__name__})")
    if isinstance(error, (httpx.TimeoutException, TimeoutError)):
        return ProviderError("timeout", "upstream timed out")
    if isinstance(error, httpx.ConnectError):
        return ProviderError("connect", "could not connect to upstream")
    if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return ProviderError("connect", f"upstream connection failed ({type(error).__name__})")
    if isinstance(error, httpx.HTTPError):
        return ProviderError("connect", f"upstream request failed ({type(error).__name__})")
    raise error


async def send(
    client: httpx.AsyncClient, request: httpx.Request, timeouts: Timeouts, *, stream: bool
) -> httpx.Response:
    """Send and wait for the response head (for non-streaming: the whole body) within `first_byte`.

    Error statuses are turned into ProviderError here, after reading their (small) body; a streaming
    response that is returned is open and must be closed by the caller.
    """
    try:
        async with asyncio.timeout(timeouts.first_byte):
            response = await client.send(request, stream=stream)
            if response.status_code >= 400:
                body = await response.aread()
                await response.aclose()
                raise error_from_response(response.status_code, body, response.headers)
            return response
    except ProviderError:
        raise
    except (httpx.HTTPError, TimeoutError) as error:
        raise error_from_exception(error) from error


async def iter_sse(response: httpx.Response, timeouts: Timeouts) -> AsyncIterator[tuple[str, bytes]]:
    """Yield (event, data) pairs of a Server-Sent Events body as their lines arrive.

    `event` is "" for unnamed events; `data` joins multi-line data with newlines. Comments and keep-alives
    are skipped. Transport failures and the total timeout become ProviderError("stream_cut"/"timeout").
    """
    event = ""
    data: list[bytes] = []
    buffer = b""
    deadline = asyncio.get_running_loop().time() + timeouts.total
    try:
        async with asyncio.timeout_at(deadline):
            async for raw in response.aiter_raw():
                buffer += raw
                while True:
                    newline = buffer.find(b"\n")
                    if newline < 0:
                        break
                    line = buffer[:newline].rstrip(b"\r")
                    buffer = buffer[newline + 1 :]
                    if not line:
                        if data:
                            yield event, b"\n".join(data)
                        event, data = "", []
                    elif line.startswith(b"data:"):
                        data.append(line[5:].lstrip(b" "))
                    elif line.startswith(b"event:"):
                        event = line[6:].strip().decode("utf-8", "replace")
        if data:
            yield event, b"\n".join(data)
    except TimeoutError as error:
        raise ProviderError("timeout", "upstream stream exceeded the total timeout") from error
    except httpx.HTTPError as error:
        raise ProviderError("stream_cut", f"upstream stream broke ({type(error).__name__})") from error
