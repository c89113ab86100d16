"""Real processes for the tests that need them: the ASGI web server (uvicorn) and a Celery worker, both on
the test database and the test Redis databases."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
Popen = subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_env(**extra: str) -> dict[str, str]:
    """The environment of a child process that must share the test run's database."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    url = f"postgres://{user}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": url,
        "GATEHOUSE_DB_CONN_MAX_AGE": "0",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def wait_for(check: Callable[[], bool], *, what: str, proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not become ready in {seconds}s")


def _start_server(argv: list[str], *, port: int, log: Path, env: dict[str, str], what: str) -> Popen:
    """Start a process that listens on `port` and wait until it accepts connections."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def up() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True

    wait_for(up, what=what, proc=proc, seconds=30)
    return proc


def start_web(port: int, log: Path, **extra: str) -> Popen:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--no-access-log",
    ]
    env = process_env(GATEHOUSE_PUBLIC_URL=f"http://localhost:{port}", **extra)
    return _start_server(argv, port=port, log=log, env=env, what="uvicorn")


def start_simulator(port: int, log: Path) -> Popen:
    argv = [sys.executable, "manage.py", "simulate_provider", "--port", str(port), "--log-level", "warning"]
    return _start_server(argv, port=port, log=log, env=process_env(), what="provider simulator")


def start_worker(name: str, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    from config.celery import app

    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--hostname",
                name,
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=process_env(**extra),
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def up() -> bool:
        replies = app.control.ping(destination=[name], timeout=0.5) or []
        return any(name in reply for reply in replies)

    wait_for(up, what="celery worker", proc=proc, seconds=60)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
