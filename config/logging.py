"""structlog: one JSON object per line on stdout, with the request id bound for the request's duration.

Only metadata is logged (ids, models, statuses, timings, token counts): never prompts, answers or keys.
"""

from __future__ import annotations

import sys

import orjson
import structlog


def _dumps(data: object, **_: object) -> str:
    return orjson.dumps(data, default=str).decode()


def configure_structlog() -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
