"""Errors of the inference API, rendered as OpenAI renders them:
{"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import orjson

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "api_error",
    503: "api_error",
    504: "api_error",
}


class ApiError(Exception):
    """An error answer of the /v1 API. Raise it anywhere below a consumer; the consumer renders it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        error_type: str | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        quiet: bool = False,
        tally: tuple[str, int, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.error_type = error_type or _TYPES.get(status, "api_error")
        self.headers = headers
        self.quiet = quiet  # no access-log line (refusals repeated many times a second; counted instead)
        # A refusal of a valid key decided in-process: counted per key and minute for (schema, tenant id, key
        # prefix) instead of a usage record (gateway.metering.refusals).
        self.tally = tally

    def body(self) -> bytes:
        return error_body(self.message, self.error_type, param=self.param, code=self.code)


def error_body(message: str, error_type: str, *, param: str | None = None, code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": error_type, "param": param, "code": code}})


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)
