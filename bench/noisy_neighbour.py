"""Noisy neighbour: tenant B's latency alone, then while tenant A floods the gateway far above its limits.

One gateway process (uvicorn, uvloop, httptools; defaults otherwise: full metering, structured access log to
bench/results/noisy-gateway.log, limits on) serves two tenants, upstream the provider simulator with sim/fast
at a fixed time to first token. Tenant A has small limits (default --rpm 600 --concurrency 8, plan starter);
tenant B keeps the limits of plan scale (6,000 rpm, 200 in flight), which its load never reaches.

Each round has two phases of --seconds each:

- baseline: B alone, open loop at --rate requests/s (a request every 1/rate s, whatever the answers do);
- flood: the same B load while wrk sends A's requests on --flood-connections connections, each sending the
  next as soon as the last is answered (--flood-rate R: after a pause of connections/R s, so ~R/s at most).
  A starts every flood with a full RPM bucket (the driver deletes it, as if A had been idle a minute): it
  spends the burst first, then gets rpm/60 requests per second; B's figures of the phase's second half
  show the refusals alone.

Both phases also send a direct probe to the simulator (--probe-rate requests/s, no gateway) to show what the
shared CPU 0 adds on its own. Latency is client-side (httpx, keep-alive). Before each phase the driver waits
for the machine to be quiet (other work's CPU), and a round whose phases had more than --max-foreign % of a
core of it is measured again; after each phase it waits until the usage consumer has emptied the usage
stream. At the end A's and B's RequestRecords are counted from the ledger.

Processes: the gateway alone on CPU 1; this driver (B's load and the probe, one asyncio process), wrk, the
simulator, the usage consumer, and (pinned by bench/noisy.sh) Redis and PostgreSQL on CPU 0.
Run: `bench/noisy.sh [--rounds 3] [--seconds 20] [--rate 50] [--flood-connections 32] [--flood-rate R]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

import django  # noqa: E402
from bench_git import git_version  # noqa: E402

django.setup()

import httpx  # noqa: E402
import uvloop  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db.models import Count  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

from config.redis import redis_client  # noqa: E402
from gateway.cache.manage import cache_settings_set  # noqa: E402
from gateway.keys import key_parse  # noqa: E402
from gateway.limits.service import scope_keys  # noqa: E402
from gateway.metering.emit import USAGE_STREAM  # noqa: E402
from gateway.models import RequestRecord  # noqa: E402
from tenants.models import Tenant  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MODEL = "sim/fast"
BODY = json.dumps(
    {"model": MODEL, "messages": [{"role": "user", "content": "Say hello in five words."}], "max_tokens": 16}
).encode()
GATEWAY_CPU, OTHER_CPU = 1, 0
TICK = os.sysconf("SC_CLK_TCK")

# wrk counts A's answers per second and kind: 200, 429 (rate) or 429c (concurrency), other statuses.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. os.getenv("WRK_KEY")
local pause = tonumber(os.getenv("WRK_DELAY_MS"))
local threads = {}
if pause > 0 then function delay() return pause end end
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body)
  local kind = tostring(status)
  if status == 429 and string.find(body, "concurrency_limit", 1, true) then kind = "429c" end
  local key = os.time() .. ":" .. kind
  counts[key] = (counts[key] or 0) + 1
end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for key, n in pairs(thread:get("counts")) do io.write(string.format("WRKC %s %d\\n", key, n)) end
  end
  io.write(string.format("WRK %d %.3f %.3f %.3f\\n", summary.requests, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


def ms(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50": pct(samples, 0.5) * 1000,
        "p95": pct(samples, 0.95) * 1000,
        "p99": pct(samples, 0.99) * 1000,
        "max": max(samples, default=math.nan) * 1000,
    }


# -- set-up --------------------------------------------------------------------------------------------------
def tenant_with_key(slug: str, plan: str) -> tuple[Tenant, str]:
    """The tenant (created on the first run), its cache off, and a new API key, via the operator commands."""
    if not Tenant.objects.filter(slug=slug).exists():
        call_command(
            "create_tenant",
            *("--slug", slug, "--name", f"Noisy {slug}", "--owner-email", f"{slug}@example.com"),
            *("--plan", plan),
            stdout=io.StringIO(),
        )
    tenant = Tenant.objects.get(slug=slug)
    cache_settings_set(tenant=tenant, enabled=False)  # every request goes upstream (the prompts repeat)
    out = io.StringIO()
    call_command("create_api_key", "--tenant", slug, "--name", "noisy neighbour", stdout=out)
    return tenant, out.getvalue().strip()


def limits_set(slug: str, *flags: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("set_limits", "--tenant", slug, *flags, stdout=out)
    limits: dict[str, Any] = json.loads(out.getvalue())["limits"]
    return limits


def spawn(
    argv: list[str], log: str, cpu: int | None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    prefix = ["taskset", "-c", str(cpu)] if cpu is not None else []
    with (RESULTS / log).open("wb") as handle:
        return subprocess.Popen(  # noqa: S603
            [*prefix, *argv], cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, env=env
        )


def wait_ready(url: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    sys.exit(f"noisy_neighbour: {url} did not answer within 30 s")


@contextlib.contextmanager
def services(args: argparse.Namespace, pinned: bool) -> Iterator[dict[str, int]]:
    """The simulator, the usage consumer and one gateway process; stopped (SIGTERM) on the way out."""
    py, sim = sys.executable, f"http://127.0.0.1:{args.sim_port}"
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["simulator"] = spawn(
            [py, "manage.py", "simulate_provider", "--port", str(args.sim_port), "--log-level", "warning"],
            "noisy-simulator.log",
            None,
        )
        consumer = ["--consumer", f"noisy-{socket.gethostname()}"]
        procs["consumer"] = spawn([py, "manage.py", "consume_usage", *consumer], "noisy-consumer.log", None)
        uvicorn = ["config.asgi:application", "--host", "127.0.0.1", "--port", str(args.port)]
        uvicorn += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--lifespan", "off"]
        procs["gateway"] = spawn(
            [py, "-m", "uvicorn", *uvicorn],
            "noisy-gateway.log",
            GATEWAY_CPU if pinned else None,
            {**os.environ, "GATEHOUSE_SIMULATOR_URL": sim},
        )
        wait_ready(f"{sim}/_control")
        wait_ready(f"http://127.0.0.1:{args.port}/healthz")
        httpx.post(f"{sim}/_control", json={"model": MODEL, "ttft_ms": args.ttft_ms}).raise_for_status()
        yield {name: proc.pid for name, proc in procs.items()}
    finally:
        for proc in reversed(procs.values()):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- CPU accounting ------------------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, own CPU ticks, reaped children's ticks) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = text[text.rfind(")") + 2 :].split()
    return int(f[1]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14])


def _tree_ticks(root: int) -> int:
    """A process tree's CPU ticks: every live descendant's own, plus what the root reaped (PostgreSQL)."""
    stats = {int(d): s for d in os.listdir("/proc") if d.isdigit() and (s := _stat(int(d))) is not None}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += stats[pid][1] if pid in stats else 0
        stack.extend(children.get(pid, []))
    return total + (stats[root][2] if root in stats else 0)


def _cpu_busy() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies per CPU from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if re.fullmatch(r"cpu\d+", name):
            v = [int(x) for x in values]
            out[name] = (sum(v) - v[3] - v[4], sum(v))
    return out


@dataclass
class CpuSnapshot:
    at: float
    procs: dict[str, float]
    busy: dict[str, tuple[int, int]]


def cpu_snapshot(pids: dict[str, int]) -> CpuSnapshot:
    procs = {name: (s[1] / TICK if (s := _stat(pid)) else 0.0) for name, pid in pids.items() if name != "pg"}
    procs["pg"] = _tree_ticks(pids["pg"]) / TICK if pids.get("pg") else 0.0
    procs["driver"] = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    procs["wrk"] = sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])  # only wrk is reaped during a run
    return CpuSnapshot(time.monotonic(), procs, _cpu_busy())


def cpu_used(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """Percent of one core per process, how busy each CPU was, and "foreign": busy time no process of the
    benchmark accounts for (other work on the machine, and kernel time such as loopback networking)."""
    span = after.at - before.at
    out = {f"{name}_pct": 100 * (after.procs[name] - before.procs[name]) / span for name in after.procs}
    ours = sum(out.values())
    for cpu, (busy, total) in after.busy.items():
        b0, t0 = before.busy[cpu]
        out[f"{cpu}_busy_pct"] = 100 * (busy - b0) / max(total - t0, 1)
    out["foreign_pct"] = sum(out[f"{cpu}_busy_pct"] for cpu in after.busy) - ours
    return out


async def quiet(pids: dict[str, int], limit_pct: float, wait_s: float) -> float:
    """Wait (up to `wait_s`) for 2 s in which foreign CPU stays under `limit_pct` of a core; returns the
    last such window's foreign CPU."""
    deadline = time.monotonic() + wait_s
    while True:
        before = cpu_snapshot(pids)
        await asyncio.sleep(2)
        foreign = cpu_used(before, cpu_snapshot(pids))["foreign_pct"]
        if foreign < limit_pct or time.monotonic() > deadline:
            return foreign


# -- load ----------------------------------------------------------------------------------------------------
@dataclass
class Samples:
    """Answers of an open loop: (wall time at the end, kind, seconds) each; kind is the HTTP status, 429c
    for a refusal on concurrency, or the exception's name."""

    answers: list[tuple[float, str, float]] = field(default_factory=list)
    late_s: float = 0.0  # the latest a request left after its slot in the schedule (driver lag)

    def summary(self, since: float = 0) -> dict[str, Any]:
        """Latency of the 200s and every answer's kind, of the answers that ended after `since` (wall)."""
        answers = [a for a in self.answers if a[0] >= since]
        ok = [seconds for _, kind, seconds in answers if kind == "200"]
        kinds = Counter(kind for _, kind, _ in answers)
        return {**ms(ok), "statuses": dict(kinds), "late_ms": self.late_s * 1000}


async def _one(client: httpx.AsyncClient, url: str, samples: Samples) -> None:
    started = time.perf_counter()
    try:
        response = await client.post(url, content=BODY)
    except httpx.HTTPError as error:
        samples.answers.append((time.time(), type(error).__name__, time.perf_counter() - started))
        return
    kind = str(response.status_code)
    if kind == "429" and b"concurrency_limit" in response.content:
        kind = "429c"
    samples.answers.append((time.time(), kind, time.perf_counter() - started))


async def open_loop(client: httpx.AsyncClient, url: str, rate: float, seconds: float) -> Samples:
    """One request every 1/rate s for `seconds`, each in its own task: a slow answer delays no other."""
    loop, samples, tasks = asyncio.get_running_loop(), Samples(), []
    start = loop.time()
    for i in range(int(rate * seconds)):
        due = start + i / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        samples.late_s = max(samples.late_s, loop.time() - due)
        tasks.append(asyncio.create_task(_one(client, url, samples)))
    await asyncio.gather(*tasks)
    return samples


async def flood(url: str, key: str, connections: int, rate: float, seconds: float) -> dict[str, Any]:
    """wrk with A's key on `connections` connections, each sending its next request once it is answered
    (and, with a `rate`, after a pause that keeps the total near it)."""
    script = RESULTS / "noisy-flood.lua"
    script.write_text(WRK_SCRIPT)
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "10s", "-s", str(script)]
    pause = round(connections * 1000 / rate) if rate else 0
    proc = await asyncio.create_subprocess_exec(
        *argv,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "WRK_BODY": BODY.decode(), "WRK_KEY": key, "WRK_DELAY_MS": str(pause)},
    )
    stdout, stderr = await proc.communicate()
    out = stdout.decode()
    if proc.returncode != 0 or "WRK " not in out:
        sys.exit(f"noisy_neighbour: wrk failed ({proc.returncode}): {out[-500:]} {stderr.decode()[-500:]}")
    per_second: dict[int, Counter[str]] = {}
    kinds: Counter[str] = Counter()
    result: dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith("WRKC "):
            second, kind, n = re.split(r"[ :]", line[5:])
            per_second.setdefault(int(second), Counter())[kind] += int(n)
            kinds[kind] += int(n)
        elif line.startswith("WRK "):
            requests, p50, p95, p99 = line.split()[1:]
            result["requests"] = int(requests)
            result["latency_ms"] = {"p50": float(p50), "p95": float(p95), "p99": float(p99)}
    result["answers"] = dict(kinds)
    result["admitted_per_second"] = {s: c["200"] for s, c in sorted(per_second.items())}
    return result


# -- phases --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    args: argparse.Namespace
    pids: dict[str, int]
    tenant_a: Tenant
    key_a: str
    rpm_a: int
    gateway: httpx.AsyncClient  # with B's key
    upstream: httpx.AsyncClient  # the simulator, directly

    @property
    def chat_url(self) -> str:
        return f"http://127.0.0.1:{self.args.port}/v1/chat/completions"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.args.sim_port}/v1/chat/completions"


def rpm_level(tenant_id: int, rpm: int) -> float:
    """Requests A's RPM bucket holds now, computed as admit.lua does (full when Redis has no bucket)."""
    t, ts = redis_client().hmget(scope_keys(tenant_id, "", "")[0], ["t", "ts"])
    if t is None or ts is None:
        return float(rpm)
    return min(float(t) + max(time.time() * 1000 - float(ts), 0) * rpm / 60000, float(rpm))


async def drained(limit_s: float = 120) -> float:
    """Seconds until the usage consumer has emptied the usage stream."""
    started = time.monotonic()
    while redis_client().xlen(USAGE_STREAM) and time.monotonic() - started < limit_s:  # noqa: ASYNC110
        await asyncio.sleep(0.1)  # polling Redis: nothing in this process could set an Event
    return time.monotonic() - started


async def phase(run: Run, seconds: float, *, with_flood: bool) -> dict[str, Any]:
    """B's open loop and the direct probe for `seconds`, with or without A's flood; then the usage drain."""
    args = run.args
    if with_flood:  # A starts each flood as after a minute idle: a full RPM bucket, the same every round
        redis_client().delete(scope_keys(run.tenant_a.pk, "", "")[0])
    gate = await quiet(run.pids, args.quiet_pct, args.quiet_wait)
    level0 = rpm_level(run.tenant_a.pk, run.rpm_a)
    before, started = cpu_snapshot(run.pids), time.time()
    jobs: list[Coroutine[Any, Any, Any]] = [
        open_loop(run.gateway, run.chat_url, args.rate, seconds),
        open_loop(run.upstream, run.sim_url, args.probe_rate, seconds),
    ]
    if with_flood:
        jobs.append(flood(run.chat_url, run.key_a, args.flood_connections, args.flood_rate, seconds))
    b, probe, *flooded = await asyncio.gather(*jobs)
    ended = time.time()
    out: dict[str, Any] = {
        "window": [started, ended],
        "b": b.summary(),
        "b_second_half": b.summary(since=started + seconds / 2),  # in a flood: A's burst is spent by then
        "direct": probe.summary(),
        "cpu": cpu_used(before, cpu_snapshot(run.pids)),
        "usage_backlog": redis_client().xlen(USAGE_STREAM),
        "foreign_before_pct": gate,
    }
    out["drain_s"] = await drained()
    if flooded:
        a = out["a"] = flooded[0]
        a["rpm_level_at_start"] = level0
        a["allowed"] = math.floor(level0 + run.rpm_a * (ended - started) / 60)
    return out


async def measure(
    args: argparse.Namespace, pids: dict[str, int], tenant_a: Tenant, key_a: str, key_b: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rounds kept, and those rejected because other work on the machine took CPU during them."""
    headers = {"authorization": f"Bearer {key_b}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with (
        httpx.AsyncClient(headers=headers, timeout=30, limits=limits) as gateway,
        httpx.AsyncClient(headers={**headers, "authorization": "Bearer simulator"}, timeout=30) as upstream,
    ):
        run = Run(args, pids, tenant_a, key_a, args.rpm, gateway, upstream)
        await phase(run, args.warmup, with_flood=False)  # connections, key and catalogue caches
        rounds: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        while len(rounds) < args.rounds and len(rejected) <= args.retries:
            baseline = await phase(run, args.seconds, with_flood=False)
            flooded = await phase(run, args.seconds, with_flood=True)
            b0, b1 = baseline["b"], flooded["b"]
            foreign = max(baseline["cpu"]["foreign_pct"], flooded["cpu"]["foreign_pct"])
            keep = foreign <= args.max_foreign
            print(
                f"round {len(rounds) + 1}{'' if keep else ' REJECTED'}: B p50/p95/p99 "
                f"{b0['p50']:.1f}/{b0['p95']:.1f}/{b0['p99']:.1f} -> {b1['p50']:.1f}/{b1['p95']:.1f}/"
                f"{b1['p99']:.1f} ms, B {b1['statuses']}, A {flooded['a']['answers']}, "
                f"foreign CPU {foreign:.0f} %",
                flush=True,
            )
            (rounds if keep else rejected).append({"baseline": baseline, "flood": flooded})
        return rounds, rejected


# -- results -------------------------------------------------------------------------------------------------
def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def ledger(tenant: Tenant, key: str, window: list[float] | None = None) -> dict[str, int]:
    """RequestRecords of this run's key, per status and error class; in a window (whole seconds) if given."""
    parsed = key_parse(key)
    assert parsed is not None
    with schema_context(tenant.schema_name):
        records = RequestRecord.objects.filter(api_key_prefix=parsed.prefix)
        if window is not None:
            start, end = _utc(math.floor(window[0])), _utc(math.ceil(window[1]) + 1)
            records = records.filter(created_at__gte=start, created_at__lt=end)
        rows = records.values("http_status", "error_class").annotate(n=Count("id"))
        return {f"{r['http_status']} {r['error_class']}".strip(): r["n"] for r in rows}


def flood_figures(run: dict[str, Any], tenant_a: Tenant, key_a: str) -> dict[str, Any]:
    """A's side of one flood phase, and what refusing it cost the gateway's core."""
    a, base, flooded = run["flood"]["a"], run["baseline"], run["flood"]
    answers = Counter(a["answers"])
    recorded = ledger(tenant_a, key_a, flooded["window"])
    start, end = flooded["window"]
    steady = [n for s, n in a["admitted_per_second"].items() if s >= start + (end - start) / 2][:-1]
    extra_cpu = (flooded["cpu"]["gateway_pct"] - base["cpu"]["gateway_pct"]) / 100 * (end - start)
    return {
        "requests_per_s": a["requests"] / (end - start),
        "admitted": answers["200"],
        "refused_rpm": answers["429"],
        "refused_concurrency": answers["429c"],
        "other": sum(n for k, n in answers.items() if k not in ("200", "429", "429c")),
        "allowed": a["allowed"],
        "ledger_admitted": sum(n for kind, n in recorded.items() if not kind.startswith("429")),
        "ledger": recorded,
        "admitted_per_s_second_half": statistics.mean(steady) if steady else math.nan,
        "latency_p50_ms": a["latency_ms"]["p50"],
        "latency_p99_ms": a["latency_ms"]["p99"],
        "gateway_cpu_ms_per_a_request": 1000 * extra_cpu / max(a["requests"], 1),
    }


FIGURES = {  # label: (part of a phase, figure)
    "B p50 (ms)": ("b", "p50"),
    "B p95 (ms)": ("b", "p95"),
    "B p99 (ms)": ("b", "p99"),
    "B max (ms)": ("b", "max"),
    "B p50, second half of the phase (ms)": ("b_second_half", "p50"),
    "B p95, second half of the phase (ms)": ("b_second_half", "p95"),
    "B p99, second half of the phase (ms)": ("b_second_half", "p99"),
    "direct to simulator p50 (ms)": ("direct", "p50"),
    "direct to simulator p95 (ms)": ("direct", "p95"),
    "direct to simulator p99 (ms)": ("direct", "p99"),
    "driver lag, worst (ms)": ("b", "late_ms"),
    "gateway process, % of a core": ("cpu", "gateway_pct"),
    "CPU 1 busy (%)": ("cpu", "cpu1_busy_pct"),
    "CPU 0 busy (%)": ("cpu", "cpu0_busy_pct"),
    "simulator, % of a core": ("cpu", "simulator_pct"),
    "driver, % of a core": ("cpu", "driver_pct"),
    "wrk, % of a core": ("cpu", "wrk_pct"),
    "usage consumer, % of a core": ("cpu", "consumer_pct"),
    "redis-server, % of a core": ("cpu", "redis_pct"),
    "PostgreSQL, % of a core": ("cpu", "pg_pct"),
    "foreign CPU (not the benchmark's), % of a core": ("cpu", "foreign_pct"),
    "usage stream backlog at the end": ("usage_backlog", ""),
    "usage drain after the phase (s)": ("drain_s", ""),
}


def _figure(phase: dict[str, Any], where: tuple[str, str]) -> float:
    value = phase[where[0]]
    return float(value[where[1]] if where[1] else value)


def summarise(rounds: list[dict[str, Any]], floods: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds: baseline, flood, and the per-round difference."""
    table = {}
    for label, where in FIGURES.items():
        base = [_figure(r["baseline"], where) for r in rounds]
        flooded = [_figure(r["flood"], where) for r in rounds]
        table[label] = {
            "baseline": statistics.median(base),
            "flood": statistics.median(flooded),
            "delta": statistics.median(f - b for f, b in zip(flooded, base, strict=True)),
        }
    a = {name: statistics.median(f[name] for f in floods) for name in floods[0] if name != "ledger"}
    return {"table": table, "a": a}


def report(summary: dict[str, Any], floods: list[dict[str, Any]], checks: dict[str, Any]) -> None:
    print(f"\n{'median of rounds':<36} {'baseline':>9} {'flood':>9} {'delta':>9}")
    for label, row in summary["table"].items():
        print(f"{label:<36} {row['baseline']:>9.2f} {row['flood']:>9.2f} {row['delta']:>+9.2f}")
    print("\nA per flood phase: requests/s, admitted (ledger) / allowed, refused rpm / concurrency, other")
    for n, f in enumerate(floods, 1):
        print(
            f"  round {n}: {f['requests_per_s']:.0f}/s, {f['admitted']} ({f['ledger_admitted']}) / "
            f"{f['allowed']}, {f['refused_rpm']} / {f['refused_concurrency']}, {f['other']}; "
            f"second half {f['admitted_per_s_second_half']:.1f} admitted/s; "
            f"A latency p50/p99 {f['latency_p50_ms']:.1f}/{f['latency_p99_ms']:.1f} ms; "
            f"gateway CPU {f['gateway_cpu_ms_per_a_request']:.3f} ms per A request"
        )
    print("\nchecks:", json.dumps(checks))


def checks_of(
    rounds: list[dict[str, Any]], floods: list[dict[str, Any]], b_ledger: dict[str, int]
) -> dict[str, Any]:
    b_statuses: Counter[str] = Counter()
    for r in rounds:
        for kind in ("baseline", "flood"):
            b_statuses.update(r[kind]["b"]["statuses"])
    return {
        "b_non_200": sum(n for status, n in b_statuses.items() if status != "200"),
        "b_429": b_statuses["429"] + sum(n for k, n in b_ledger.items() if k.startswith("429")),
        "b_ledger": b_ledger,
        "a_within_rpm": all(max(f["admitted"], f["ledger_admitted"]) <= f["allowed"] for f in floods),
        "a_answers_other_than_200_429": sum(f["other"] for f in floods),
    }


def gateway_log_problems() -> dict[str, int]:
    text = (RESULTS / "noisy-gateway.log").read_text(errors="replace")
    return {word: text.count(word) for word in ("Traceback", '"ERROR"', '"WARNING"')}


# -- main ----------------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20, help="per phase")
    parser.add_argument("--warmup", type=float, default=3, help="B alone, discarded, before the first round")
    parser.add_argument("--rate", type=float, default=50, help="B's requests per second (open loop)")
    parser.add_argument("--probe-rate", type=float, default=10, help="direct requests to the simulator per s")
    parser.add_argument(
        "--flood-connections", type=int, default=32, help="A's connections (wrk, closed loop)"
    )
    parser.add_argument(
        "--flood-rate", type=float, default=0, help="pace A to about this many requests/s (0: all out)"
    )
    parser.add_argument("--rpm", type=int, default=600, help="A's requests per minute")
    parser.add_argument("--concurrency", type=int, default=8, help="A's requests in flight")
    parser.add_argument("--ttft-ms", type=float, default=20, help="the simulator's sim/fast latency")
    parser.add_argument("--port", type=int, default=9310, help="the gateway's")
    parser.add_argument("--sim-port", type=int, default=9311, help="the simulator's")
    parser.add_argument("--redis-pid", type=int, default=0, help="for CPU accounting (bench/noisy.sh)")
    parser.add_argument("--pg-pid", type=int, default=0, help="the postmaster, for CPU accounting")
    parser.add_argument("--quiet-pct", type=float, default=15, help="foreign CPU to wait out before a phase")
    parser.add_argument("--quiet-wait", type=float, default=30, help="waiting at most this long (s)")
    parser.add_argument(
        "--max-foreign", type=float, default=35, help="reject a round whose phases had more foreign CPU"
    )
    parser.add_argument("--retries", type=int, default=3, help="rejected rounds to replace, in all")
    parser.add_argument("--no-pin", action="store_true", help="no CPU pinning")
    parser.add_argument("--json", type=Path, help="default bench/results/noisy-<commit>-<time>.json")
    return parser.parse_args()


def preflight(args: argparse.Namespace) -> None:
    if not str(settings.DATABASES["default"]["NAME"]).endswith("_bench"):
        sys.exit("noisy_neighbour: run it on the benchmark database (bench/noisy.sh)")
    for port in (args.port, args.sim_port):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            sys.exit(f"noisy_neighbour: port {port} is busy")


def main() -> None:
    args = parse_args()
    preflight(args)
    pinned = (os.cpu_count() or 1) >= 2 and not args.no_pin
    if pinned:
        os.sched_setaffinity(0, {OTHER_CPU})  # the simulator and the consumer inherit it
    started, version = datetime.now(tz=UTC), git_version()  # the code the gateway is about to load
    tenant_a, key_a = tenant_with_key("noisy-a", "starter")
    tenant_b, key_b = tenant_with_key("noisy-b", "scale")
    limits = {
        "a": limits_set("noisy-a", "--rpm", str(args.rpm), "--concurrency", str(args.concurrency)),
        "b": limits_set("noisy-b"),
    }
    print(f"limits: {json.dumps(limits)}", flush=True)
    with services(args, pinned) as pids:
        rounds, rejected = uvloop.run(
            measure(args, {**pids, "redis": args.redis_pid, "pg": args.pg_pid}, tenant_a, key_a, key_b)
        )
    if not rounds:
        sys.exit("noisy_neighbour: every round was rejected (other work on the machine); try again later")
    every = [flood_figures(r, tenant_a, key_a) for r in rounds + rejected]
    floods = every[: len(rounds)]
    summary = summarise(rounds, floods)
    checks = checks_of(rounds + rejected, every, ledger(tenant_b, key_b))
    checks["a_ledger_total"] = ledger(tenant_a, key_a)
    checks["gateway_log"] = gateway_log_problems()
    checks["rounds_rejected_for_foreign_cpu"] = len(rejected)
    report(summary, floods, checks)
    if git_version() != version:  # the gateway loaded the code of the start; later edits are not measured
        print(f"note: the working tree changed during the run (at the start: {version})")
    out = {
        "started": started.isoformat(),
        "version": version,
        "version_at_end": git_version(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "pinned": {"gateway": GATEWAY_CPU, "everything else": OTHER_CPU} if pinned else None,
        "limits": limits,
        "summary": summary,
        "floods": floods,
        "checks": checks,
        "rounds": rounds,
        "rejected": [{**r, "flood_figures": f} for r, f in zip(rejected, every[len(rounds) :], strict=True)],
    }
    path = args.json or RESULTS / f"noisy-{version['commit']}-{started:%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(out, indent=1, default=str))
    print(f"\nwritten {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
