"""Drive chat completions through the ASGI application in this process, one at a time, against the shared
harness's fake upstream: the request path's own work, with no HTTP server or load generator around it.

    bench/asgi_drive.py N [--stream]      # 20 warm-up requests, then N measured ones

Run by bench/instructions.sh under callgrind (instructions are deterministic, unlike CPU time on this shared
machine). Needs the environment bench/run.sh gives gateway commands (the bench database and Redis database,
GATEHOUSE_EXTRA_ENDPOINTS with bench0, GATEHOUSE_DATA_DIR) and the key in bench/results/.bench-key.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, os.getcwd())  # the checkout being measured (bench/instructions.sh runs it from there)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

import django

django.setup()

import uvloop  # noqa: E402

from config.asgi import application  # noqa: E402

KEY_FILE = Path(__file__).resolve().parent / "results" / ".bench-key"
WARM_UP = 20


def body(stream: bool) -> bytes:
    return (
        b'{"model":"fake-0ms","messages":[{"role":"system","content":"You are a helpful assistant."},'
        b'{"role":"user","content":"Say something short about benchmarks."}],"max_tokens":64,"temperature":0'
        + (b',"stream":true}' if stream else b"}")
    )


async def request(key: bytes, payload: bytes) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 9100),
        "headers": [
            (b"host", b"127.0.0.1:9100"),
            (b"content-type", b"application/json"),
            (b"authorization", b"Bearer " + key),
        ],
    }
    incoming = [{"type": "http.request", "body": payload, "more_body": False}]
    done = asyncio.Event()
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop()
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
        elif not message.get("more_body"):
            done.set()

    await application(scope, receive, send)
    if statuses != [200]:
        raise SystemExit(f"the gateway answered {statuses}: is the fake upstream on :18080, the key valid?")


async def main(count: int, stream: bool) -> None:
    key = KEY_FILE.read_text().strip().encode()
    payload = body(stream)
    for _ in range(WARM_UP + count):
        await request(key, payload)
    await asyncio.sleep(0.2)  # let background work (metrics, log lines) finish


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("count", type=int)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    uvloop.run(main(args.count, args.stream))
