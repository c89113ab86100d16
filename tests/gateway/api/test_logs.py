"""The gateway's logs carry request ids and metadata, never prompts, answers or keys."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson

from tests.gateway.api.conftest import Keys, Simulator, chat


def test_logs_have_the_request_but_not_the_prompt_or_the_key(
    gateway: str, keys: Keys, sim: Simulator, artifacts_dir: Path
) -> None:
    secret_prompt = f"my card is 4111 1111 1111 1111, marker {uuid.uuid4().hex}"
    body = {"model": "sim/echo", "messages": [{"role": "user", "content": secret_prompt}]}
    ok = chat(gateway, keys.acme, body)
    bad = chat(gateway, keys.acme[:-4] + "AAAA", body)
    assert (ok.status_code, bad.status_code) == (200, 401)
    assert secret_prompt in ok.text  # the echo model did answer with it

    time.sleep(0.3)
    log = (artifacts_dir / "web.log").read_text()
    assert secret_prompt not in log
    assert keys.acme not in log
    assert keys.acme.rsplit("_", 1)[1] not in log  # not even the secret part of a key
    lines = [orjson.loads(line) for line in log.splitlines() if ok.headers["x-request-id"] in line]
    assert len(lines) == 1
    assert lines[0]["served_model"] == "sim/echo"
    assert lines[0]["key"] == keys.acme.split("_")[1]  # the visible prefix only
    assert bad.headers["x-request-id"] in log
