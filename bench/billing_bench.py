"""Billing at scale, step 2 of 2: the rollups and the invoice run of a closed period, measured.

bench/billing.sh runs bench/billing_setup.py (tenants and records, in its own database), then this, in a
process of its own so that its peak memory is the billing code's alone, against its own localstripe. Phases,
each with its wall time, this process's peak RSS and CPU, and the CPU of PostgreSQL's processes, of
localstripe and of anything else on the machine:

- A. rollups: `rollup_period(tenant, period)` for every tenant;
- B. the invoice run: `invoice_run_create(period=..., trigger="bench")` then `invoice_run_execute(run)`
  (which recomputes the rollups, rates, creates the Stripe customers, invoice items and invoices); its steps
  and Stripe calls are timed by wrapping billing.invoicing's and billing.stripe_api's functions in place (the
  code under test is not changed);
- C. `reconcile_period(period)`, asserted to find no difference (the bench's correctness check), and the
  rollups' sums asserted equal to the records' as generated;
- D. the same run again: every invoice is issued, so it must make no Stripe call.

Results: a table on stdout and bench/results/billing-<commit>-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

# bench/billing_setup.py (this directory is on sys.path) sets Django up when imported: it goes first.
from bench_git import git_version
from billing_setup import RESULTS, ROOT, SETUP_FILE, SLUG_PREFIX, TICK, machine_busy_cpu, parse_args
from django.conf import settings
from django.db import connection
from django.db.models import Sum

from billing import invoicing, runs, stripe_api
from billing.models import Invoice, InvoiceLine, UsageRollup
from billing.periods import period_bounds
from billing.reconcile import reconcile_period
from billing.rollups import rollup_period
from tenants.models import Tenant


# -- measuring -----------------------------------------------------------------------------------------------
def proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process, or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def pg_cpu(postmaster: int) -> dict[int, float]:
    """CPU seconds of the postmaster and of each of its processes (backends, autovacuum, checkpointer...)."""
    found = {}
    for entry in Path("/proc").iterdir():
        stat = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if stat and (stat[0] == postmaster or int(entry.name) == postmaster):
            found[int(entry.name)] = stat[1]
    return found


def vm_kb(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


class Monitor:
    """Per phase: wall time, this process's RSS (sampled every 50 ms, and the kernel's high-water mark,
    reset at the phase's start) and CPU, PostgreSQL's processes' CPU and localstripe's CPU and RSS."""

    def __init__(self, pg_pid: int, localstripe_pid: int) -> None:
        self.pg_pid, self.localstripe_pid = pg_pid, localstripe_pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_kb = max(self.peak_kb, vm_kb("VmRSS"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    @contextmanager
    def phase(self, name: str) -> Iterator[dict[str, Any]]:
        record: dict[str, Any] = {"phase": name}
        hwm_reset = reset_high_water_mark()
        self.peak_kb = start_kb = vm_kb("VmRSS")
        cpu0, pg0, ls0, busy0 = self_cpu(), pg_cpu(self.pg_pid), self.localstripe_cpu(), machine_busy_cpu()
        load0, started = os.getloadavg(), time.perf_counter()
        yield record
        wall = time.perf_counter() - started
        pg1, busy = pg_cpu(self.pg_pid), machine_busy_cpu() - busy0
        ours = {
            "bench_cpu_s": self_cpu() - cpu0,
            "postgres_cpu_s": sum(cpu - pg0.get(pid, 0.0) for pid, cpu in pg1.items()),
            "localstripe_cpu_s": self.localstripe_cpu() - ls0,
        }
        record.update(
            wall_s=wall,
            rss_start_mb=start_kb / 1024,
            rss_peak_sampled_mb=max(self.peak_kb, vm_kb("VmRSS")) / 1024,
            rss_high_water_mb=vm_kb("VmHWM") / 1024 if hwm_reset else None,
            **ours,
            other_cpu_s=busy - sum(ours.values()),
            localstripe_rss_mb=self.localstripe_rss_mb(),
            load_average_start=load0,
            load_average_end=os.getloadavg(),
        )
        print(f"{name}: {wall:.1f} s", flush=True)

    def localstripe_cpu(self) -> float:
        stat = proc_stat(self.localstripe_pid) if self.localstripe_pid else None
        return stat[1] if stat else 0.0

    def localstripe_rss_mb(self) -> float | None:
        try:
            status = Path(f"/proc/{self.localstripe_pid}/status").read_text()
        except OSError:
            return None
        kb = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")]
        return kb[0] / 1024 if kb else None


def reset_high_water_mark() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux: 5 > /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Tally:
    """Calls and time of module functions, wrapped in place: the code under test is not changed."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.per_tenant: list[tuple[int, float]] = []
        self.stripe_calls: list[tuple[str, float]] = []

    def wrap(
        self, module: ModuleType, name: str, label: Callable[[tuple[Any, ...]], str] | None = None
    ) -> None:
        original = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = label(args) if label else f"step {name}"
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - started
                self.calls[key] += 1
                self.seconds[key] += seconds
                if name == "_call":
                    self.stripe_calls.append((key, seconds))
                if name == "invoice_tenant_period":
                    self.per_tenant.append((args[0].pk, seconds))
                    if len(self.per_tenant) % 100 == 0:
                        print(f"  {len(self.per_tenant)} tenants invoiced", flush=True)

        setattr(module, name, wrapper)

    def take(self) -> dict[str, Any]:
        taken = {
            "calls": dict(self.calls),
            "seconds": dict(self.seconds),
            "per_tenant": self.per_tenant,
            "stripe_ms_first_last_tenth": growth(self.stripe_calls),
        }
        self.calls, self.seconds, self.per_tenant, self.stripe_calls = Counter(), defaultdict(float), [], []
        return taken


def growth(calls: list[tuple[str, float]]) -> dict[str, tuple[float, float]]:
    """Per kind of Stripe call, the mean time (ms) of its first and last tenth of calls: does it grow with
    the number of objects localstripe holds?"""
    by_kind: defaultdict[str, list[float]] = defaultdict(list)
    for kind, seconds in calls:
        by_kind[kind].append(seconds * 1000)
    result = {}
    for kind, times in by_kind.items():
        tenth = max(1, len(times) // 10)
        result[kind] = (statistics.mean(times[:tenth]), statistics.mean(times[-tenth:]))
    return result


def tally_install() -> Tally:
    tally = Tally()
    steps = (
        "rollup_period",
        "invoice_rate",
        "customer_ensure",
        "_items_push",
        "_invoice_create",
        "_invoice_issue",
    )
    for step in steps:
        tally.wrap(invoicing, step)
    tally.wrap(runs, "invoice_tenant_period", lambda _args: "tenant")
    tally.wrap(stripe_api, "_call", lambda args: f"stripe {args[0]}")
    return tally


# -- phases -------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> None:
    prepared = json.loads(SETUP_FILE.read_text())
    started, version = datetime.now(tz=UTC), git_version()
    tenants = list(Tenant.objects.filter(slug__startswith=SLUG_PREFIX).order_by("pk"))
    records = {t.pk: n for t, n in zip(tenants, prepared["records_by_tenant"], strict=True)}
    baseline_mb = vm_kb("VmRSS") / 1024
    monitor, tally = Monitor(args.pg_pid, args.localstripe_pid), tally_install()
    phases = [
        phase_rollups(monitor, tenants, args.period),
        phase_invoice_run(monitor, tally, args.period, records),
        phase_reconcile(monitor, tally, args.period, prepared),
        phase_rerun(monitor, tally, args.period),
    ]
    monitor.close()
    out = {
        "started": started.isoformat(),
        "version": version,
        "version_at_end": git_version(),
        "machine": machine(),
        "args": vars(args),
        "setup": {k: v for k, v in prepared.items() if k != "records_by_tenant"},
        "rss_after_django_setup_mb": baseline_mb,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "phases": phases,
        "invoices": invoices_summary(args.period),
    }
    report(out)
    path = args.json or RESULTS / f"billing-{version['commit']}-{started:%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(out, indent=1, default=str))
    print(f"\nwritten {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def phase_rollups(monitor: Monitor, tenants: list[Tenant], period: str) -> dict[str, Any]:
    with monitor.phase("A. rollups (rollup_period per tenant)") as record:
        rows, durations = 0, []
        for tenant in tenants:
            began = time.perf_counter()
            rows += rollup_period(tenant, period)
            durations.append(time.perf_counter() - began)
        record.update(rollup_rows=rows, per_tenant_s=spread(durations))
    return record


def phase_invoice_run(monitor: Monitor, tally: Tally, period: str, records: dict[int, int]) -> dict[str, Any]:
    with monitor.phase("B. invoice run (invoice_run_create + invoice_run_execute)") as record:
        invoice_run = runs.invoice_run_create(period=period, trigger="bench")
        invoice_run = runs.invoice_run_execute(invoice_run)
    taken = tally.take()
    per_tenant = taken.pop("per_tenant")
    durations = [seconds for _, seconds in per_tenant]
    biggest = max(records, key=records.__getitem__)
    tenth = max(1, len(durations) // 10)
    record.update(
        run={
            "status": invoice_run.status,
            "tenants_total": invoice_run.tenants_total,
            "tenants_done": invoice_run.tenants_done,
            "tenants_failed": invoice_run.tenants_failed,
            "last_error": invoice_run.last_error[:2000],
        },
        per_tenant_s=spread(durations),
        first_tenth_mean_s=statistics.mean(durations[:tenth]),
        last_tenth_mean_s=statistics.mean(durations[-tenth:]),
        biggest_tenant={"records": records[biggest], "seconds": dict(per_tenant).get(biggest)},
        **taken,
    )
    assert invoice_run.status == "done", invoice_run.last_error
    assert invoice_run.tenants_failed == 0
    return record


def phase_reconcile(monitor: Monitor, tally: Tally, period: str, prepared: dict[str, Any]) -> dict[str, Any]:
    with monitor.phase("C. reconcile_period") as record:
        checked, differences = reconcile_period(period)
    start, end = period_bounds(period)
    sums = UsageRollup.objects.filter(day__gte=start.date(), day__lt=end.date()).aggregate(
        requests=Sum("requests"),
        price=Sum("price"),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
    )
    record.update(
        tenants_checked=checked,
        differences=[str(d) for d in differences[:50]],
        rollup_sums=sums,
        **tally.take(),
    )
    assert not differences, "\n".join(str(d) for d in differences[:20])
    assert sums["requests"] == prepared["records"], sums
    assert sums["price"] == Decimal(prepared["records_price"]), sums
    assert sums["input_tokens"] == prepared["records_input_tokens"], sums
    assert sums["output_tokens"] == prepared["records_output_tokens"], sums
    return record


def phase_rerun(monitor: Monitor, tally: Tally, period: str) -> dict[str, Any]:
    with monitor.phase("D. the same run again (idempotent: nothing to do)") as record:
        invoice_run = runs.invoice_run_execute(runs.invoice_run_create(period=period, trigger="bench"))
    taken = tally.take()
    taken.pop("per_tenant")
    record.update(run_status=invoice_run.status, **taken)
    stripe_calls = sum(n for what, n in taken["calls"].items() if what.startswith("stripe "))
    assert stripe_calls == 0, taken["calls"]
    return record


def spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "mean": statistics.mean(ordered),
        "p50": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)],
        "max": ordered[-1],
        "total": sum(ordered),
    }


def invoices_summary(period: str) -> dict[str, Any]:
    invoices = Invoice.objects.filter(period=period)
    lines = InvoiceLine.objects.filter(invoice__period=period)
    return {
        "by_status": dict(Counter(invoices.values_list("status", flat=True))),
        "total": str(invoices.aggregate(total=Sum("total"))["total"]),
        "lines": lines.count(),
        "lines_by_kind": dict(Counter(lines.values_list("kind", flat=True))),
        "lines_pushed_to_stripe": lines.exclude(stripe_invoice_item_id="").count(),
    }


# -- report --------------------------------------------------------------------------------------------------
def report(out: dict[str, Any]) -> None:
    setup_info = out["setup"]
    load = ", ".join(f"{x:.2f}" for x in setup_info["load_average_before_setup"])
    print(f"\nsetup: {setup_info['setup_s']:.0f} s (load average before: {load})")
    for what, seconds in setup_info["timings_s"].items():
        print(f"  {what}: {seconds:.1f} s")
    print(f"\nRSS after django.setup(): {out['rss_after_django_setup_mb']:.0f} MB")
    print(f"peak RSS of the run process: {out['peak_rss_mb']:.0f} MB")
    head = "| phase | wall s | peak RSS MB (sampled / HWM) | CPU s: bench | PostgreSQL | localstripe | other"
    print("\n" + head + " |\n|" + " --- |" * 7)
    for p in out["phases"]:
        hwm = f"{p['rss_high_water_mb']:.0f}" if p["rss_high_water_mb"] is not None else "-"
        rss = f"{p['rss_peak_sampled_mb']:.0f} / {hwm}"
        cpu = " | ".join(
            f"{p[k]:.1f}" for k in ("bench_cpu_s", "postgres_cpu_s", "localstripe_cpu_s", "other_cpu_s")
        )
        print(f"| {p['phase']} | {p['wall_s']:.1f} | {rss} | {cpu} |")
    invoice_run = out["phases"][1]
    tenants = invoice_run["run"]["tenants_total"]
    print(f"\ninvoice run, per tenant ({tenants} tenants): {json.dumps(invoice_run['per_tenant_s'])}")
    first, last = invoice_run["first_tenth_mean_s"], invoice_run["last_tenth_mean_s"]
    print(f"  mean of the first tenth of the tenants {first:.3f} s, of the last tenth {last:.3f} s")
    print(f"  biggest tenant: {invoice_run['biggest_tenant']}")
    stripe = {k: n for k, n in invoice_run["calls"].items() if k.startswith("stripe ")}
    calls, stripe_s = sum(stripe.values()), sum(invoice_run["seconds"][k] for k in stripe)
    print(f"  Stripe calls: {calls} ({calls / tenants:.2f} per tenant), {stripe_s:.1f} s")
    for what in sorted(invoice_run["calls"], key=lambda w: -invoice_run["seconds"][w]):
        n, seconds = invoice_run["calls"][what], invoice_run["seconds"][what]
        each = seconds / n * 1000
        first_last = invoice_run["stripe_ms_first_last_tenth"].get(what)
        trend = f" (first tenth {first_last[0]:.1f}, last tenth {first_last[1]:.1f})" if first_last else ""
        print(
            f"  {what}: {n} calls ({n / tenants:.2f} per tenant), {seconds:.1f} s, {each:.1f} ms each{trend}"
        )
    print(f"\ninvoices: {json.dumps(out['invoices'])}")
    reconciled = out["phases"][2]
    print(f"reconcile: {reconciled['tenants_checked']} tenants, {len(reconciled['differences'])} differences")


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), ""
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        row = cursor.fetchone()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgres": row[0] if row else "",
        "database": settings.DATABASES["default"]["NAME"],
        "stripe_api_base": settings.STRIPE_API_BASE,
    }


if __name__ == "__main__":
    run(parse_args())
