"""Running the simulator with uvicorn (uvloop + httptools, no access log, no lifespan)."""

from __future__ import annotations

import logging

import uvicorn

from gateway.simulator.app import create_app

# A cut stream (cut_after_chunks) returns from the app on purpose without ending the response, which
# uvicorn reports as an error; the simulator does it by design, so the message is noise.
_CUT_MESSAGE = "ASGI callable returned without completing response."


class _DropDeliberateCuts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _CUT_MESSAGE


def build_server(host: str = "127.0.0.1", port: int = 8100, *, log_level: str = "info") -> uvicorn.Server:
    """A uvicorn server for a fresh simulator app; call `.run()` (blocking) or `await .serve()`."""
    config = uvicorn.Config(
        create_app(),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level=log_level,
        # Requests of hanging models never end by themselves: do not wait long for them on Ctrl-C.
        timeout_graceful_shutdown=1,
    )
    logging.getLogger("uvicorn.error").addFilter(_DropDeliberateCuts())
    return uvicorn.Server(config)
