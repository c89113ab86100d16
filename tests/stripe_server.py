"""localstripe, the offline Stripe fake, as a real server process for the billing tests.

It runs from its own virtualenv (.data/localstripe: GPLv3, never a dependency of Gatehouse) through
scripts/localstripe_serve.py with --no-persist, so its state stays in memory: test runs never touch each
other's state nor the dev server's (plain localstripe shares /tmp/localstripe.pickle between instances).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.live import ROOT, Popen, _start_server

VENV = Path(os.environ.get("GATEHOUSE_DATA_DIR", ROOT / ".data")) / "localstripe"


def localstripe_install() -> None:
    """Create localstripe's virtualenv unless it is there (scripts/localstripe.sh install)."""
    if (VENV / "bin" / "localstripe").exists():
        return
    done = subprocess.run(
        [ROOT / "scripts" / "localstripe.sh", "install"], cwd=ROOT, capture_output=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"scripts/localstripe.sh install failed:\n{done.stderr.decode()}")


def start_localstripe(port: int, log: Path) -> Popen:
    """Start localstripe on 127.0.0.1:`port`, its state in memory only, and wait until it is up."""
    localstripe_install()
    argv = [str(VENV / "bin" / "python"), "scripts/localstripe_serve.py", "--port", str(port), "--no-persist"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return _start_server(argv, port=port, log=log, env=env, what="localstripe")


def localstripe_reset(base_url: str) -> None:
    """Delete every object. Webhook endpoints stay: they are not part of localstripe's data."""
    httpx.delete(f"{base_url}/_config/data").raise_for_status()


def localstripe_webhook(
    base_url: str, url: str, secret: str, name: str = "gatehouse", events: Sequence[str] | None = None
) -> None:
    """Send events (all, or only the types in `events`) to `url`, signed with `secret`.

    Registering the same `name` again replaces the endpoint; there is no way to delete one.
    """
    data: dict[str, str | list[str]] = {"url": url, "secret": secret}
    if events is not None:
        data["events[]"] = list(events)
    httpx.post(f"{base_url}/_config/webhooks/{name}", data=data).raise_for_status()
