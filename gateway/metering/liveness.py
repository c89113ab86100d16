"""Which serving processes are alive: a heartbeat per process in Redis, so that the requests a dead process
left open are settled within seconds (gateway.metering.reaper) instead of when their limiter lease expires.

Each process that admits requests gets an identity (`host:pid:random`, so a reused pid is a new process),
registered in the set `gh:procs`, and a heartbeat key `gh:proc:<identity>` that a daemon thread refreshes
every GATEHOUSE_HEARTBEAT_SECONDS with a time to live of GATEHOUSE_HEARTBEAT_TTL_SECONDS. A thread, not a
task on the event loop: a loop busy with one slow request must not make its process look dead. The process's
open requests live in the hash `gh:open:<identity>` (written by the limiter's admission, updated by
checkpoints, removed by the settle). A heartbeat that has expired means the process is gone (killed, its
machine down, or cut off from Redis for longer than the TTL): its open requests are then settled from their
last checkpoint by whoever reaps first.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass

from django.conf import settings

from config.redis import redis_client

log = logging.getLogger(__name__)

PROCESSES = "gh:procs"
HEARTBEAT_PREFIX = "gh:proc:"
OPEN_PREFIX = "gh:open:"


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    pid: int

    @property
    def heartbeat_key(self) -> str:
        return f"{HEARTBEAT_PREFIX}{self.name}"

    @property
    def open_key(self) -> str:
        return f"{OPEN_PREFIX}{self.name}"


_lock = threading.Lock()
_identity: Identity | None = None


def process_identity() -> Identity:
    """This process's identity, its heartbeat started on first use (and again in a forked child)."""
    global _identity
    identity = _identity
    if identity is not None and identity.pid == os.getpid():
        return identity
    with _lock:
        if _identity is None or _identity.pid != os.getpid():
            name = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
            _identity = Identity(name, os.getpid())
            _Heartbeat(_identity).start()
        return _identity


def open_key() -> str:
    """The hash of this process's open requests (request id -> its last checkpoint)."""
    return process_identity().open_key


class _Heartbeat(threading.Thread):
    def __init__(self, identity: Identity) -> None:
        super().__init__(name="gatehouse-heartbeat", daemon=True)
        self.identity = identity
        self.failing = False

    def run(self) -> None:
        interval = float(settings.GATEHOUSE_HEARTBEAT_SECONDS)
        stop = threading.Event()
        while self.identity.pid == os.getpid():
            self.beat()
            stop.wait(interval)

    def beat(self) -> None:
        ttl_ms = int(float(settings.GATEHOUSE_HEARTBEAT_TTL_SECONDS) * 1000)
        try:
            pipe = redis_client().pipeline(transaction=False)
            pipe.set(self.identity.heartbeat_key, "1", px=ttl_ms)
            pipe.sadd(PROCESSES, self.identity.name)  # again each time: Redis may have lost the set
            pipe.execute()
        except Exception as error:  # Redis away: requests spool their events; beat again next time
            if not self.failing:
                log.warning("heartbeat: cannot reach Redis (%s)", type(error).__name__)
            self.failing = True
        else:
            self.failing = False
