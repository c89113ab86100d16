"""Billing at scale, step 1 of 2: the tenants and their records (bench/billing.sh; not timed, reported).

- Three bench plans that make rating do all its work: `bb-basic` ($10/month, 20 % markup, cache hits at
  10 %), `bb-pro` ($100/month, 5M tokens included, sim/smart at a fixed price) and `bb-payg` (no fee, 25 %
  markup, $1 of usage included, $5 minimum). Tenants round-robin over them; every tenth moves to the next
  plan at a random second of the period (two prorated spans, requests priced by the plan then in force).
- Tenant `bb-0000` is made by `tenant_create` (its schema migrated, ~1 s); the others' schemas are cloned
  from it (`CREATE TABLE ... (LIKE ... INCLUDING ALL)` per table, its django_migrations and content-type rows
  copied) and their Tenant, Domain and PlanAssignment rows bulk-inserted, all created a month before the
  period.
- --records RequestRecords: none for 3 % of the tenants, the others' counts Zipf-like (the tenant of rank r
  gets a share proportional to 1/r^--zipf: 134,138 of 1M for the biggest), at random moments of the period
  (stored in time order), each tenant using 2 to 5 of 8 catalogue models; 2 % failed (429 or 502, no
  tokens), 7 % exact and 4 % semantic cache hits, 1 % served by a fallback model. Unit prices, price and
  provider cost are computed as the gateway does (PlanPricing.unit_prices(CatalogModel.info()),
  .percent(hit_percent) for a hit, .amount(tokens)). Loaded with COPY, then VACUUM ANALYZE per table (as
  autovacuum would have done by the end of the month).

Writes bench/results/.billing-setup.json (timings, the records' sums, per-tenant counts) for step 2,
bench/billing_bench.py.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from psycopg import sql  # noqa: E402

from billing.models import Plan, PlanAssignment, PlanModelPrice  # noqa: E402
from billing.periods import period_bounds  # noqa: E402
from billing.plans import plan_pricing_load  # noqa: E402
from gateway.catalog.models import CatalogModel  # noqa: E402
from gateway.pricing import PlanPricing, UnitPrices, provider_cost  # noqa: E402
from gateway.routing import ModelInfo  # noqa: E402
from tenants.models import Domain, Tenant  # noqa: E402
from tenants.services import tenant_create, tenant_domain_for  # noqa: E402
from tenants.slugs import schema_name_for  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SETUP_FILE = RESULTS / ".billing-setup.json"
MODELS = (  # catalogue model, relative popularity
    ("gpt-4o-mini", 5),
    ("gpt-4.1", 2),
    ("anthropic/claude-sonnet-4-5", 3),
    ("anthropic/claude-haiku-4-5", 2),
    ("sim/fast", 4),
    ("sim/smart", 2),
    ("sim/code", 2),
    ("sim/echo", 1),  # free: its lines are left off the invoice
)
PLANS: dict[str, dict[str, Any]] = {
    "bb-basic": {"name": "BB Basic", "monthly_fee": Decimal(10), "markup_percent": Decimal(20)},
    "bb-pro": {
        "name": "BB Pro",
        "monthly_fee": Decimal(100),
        "markup_percent": Decimal(10),
        "included_tokens": 5_000_000,
    },
    "bb-payg": {
        "name": "BB Pay as you go",
        "monthly_fee": Decimal(0),
        "markup_percent": Decimal(25),
        "included_amount": Decimal("1.00"),
        "minimum_monthly_charge": Decimal("5.00"),
    },
}
# The order of the fields written by tenant_rows() and failed_row().
COLUMNS = (  # noqa: SIM905 -- one string reads better than 27 lines
    "request_id created_at recorded_at api_key_prefix requested_model served_model provider task_type"
    " attempts fallback_count input_tokens output_tokens tokens_estimated provider_cost price"
    " unit_input_price unit_output_price latency_ms ttft_ms cache_status http_status error_class stream"
    " client_disconnected cache_similarity pii_counts cache_saving"
).split()
IDLE_SHARE, ERROR_SHARE, EXACT_SHARE, SEMANTIC_SHARE, FALLBACK_SHARE = 0.03, 0.02, 0.07, 0.04, 0.01
SLUG_PREFIX = "bb-"


# -- setup: tenants ------------------------------------------------------------------------------------------
def plans_ensure() -> list[Plan]:
    plans = [Plan.objects.update_or_create(slug=slug, defaults=values)[0] for slug, values in PLANS.items()]
    PlanModelPrice.objects.update_or_create(
        plan=plans[1],
        model_name="sim/smart",
        defaults={
            "rule": PlanModelPrice.Rule.FIXED,
            "input_price_per_mtok": Decimal("3.00"),
            "output_price_per_mtok": Decimal("12.00"),
        },
    )
    return plans


@dataclass(frozen=True, slots=True)
class TenantSpec:
    """One bench tenant: its plans (a second one from `change_ms` on), models and number of records."""

    index: int
    plans: tuple[int, ...]
    change_ms: int
    models: tuple[str, ...]
    weights: tuple[float, ...]
    records: int

    @property
    def slug(self) -> str:
        return f"{SLUG_PREFIX}{self.index:04d}"

    def plan_at(self, ms: int) -> int:
        return self.plans[-1] if ms >= self.change_ms else self.plans[0]


def tenant_specs(args: argparse.Namespace, start_ms: int, period_ms: int) -> list[TenantSpec]:
    rng = np.random.default_rng(args.seed)
    counts = record_counts(rng, args.tenants, args.records, args.zipf)
    popularity = np.array([weight for _, weight in MODELS], dtype=float)
    specs = []
    for index, count in enumerate(counts):
        changes = index % 10 == 9
        chosen = rng.choice(
            len(MODELS), size=int(rng.integers(2, 6)), replace=False, p=popularity / popularity.sum()
        )
        weights = rng.dirichlet(np.ones(len(chosen)))
        specs.append(
            TenantSpec(
                index=index,
                plans=(index % 3, (index + 1) % 3) if changes else (index % 3,),
                change_ms=start_ms + int(rng.integers(period_ms // 6, period_ms * 5 // 6)) if changes else 0,
                models=tuple(MODELS[int(m)][0] for m in chosen),
                weights=tuple(float(w) for w in weights),
                records=count,
            )
        )
    return specs


def record_counts(rng: np.random.Generator, tenants: int, records: int, zipf: float) -> list[int]:
    """Records per tenant: none for IDLE_SHARE of them, the others' shares proportional to 1/rank^zipf."""
    active = rng.permutation(tenants)[: tenants - round(tenants * IDLE_SHARE)]
    weights = np.zeros(tenants)
    weights[active] = 1 / np.arange(1, len(active) + 1) ** zipf
    counts = np.floor(weights / weights.sum() * records).astype(int)
    counts[active[: records - int(counts.sum())]] += 1
    result: list[int] = counts.tolist()
    return result


def template_create(spec: TenantSpec, plans: list[Plan]) -> Tenant:
    """The first tenant, through tenant_create: its schema is migrated, the others are cloned from it."""
    return tenant_create(
        slug=spec.slug,
        name=f"Bench billing {spec.index:04d}",
        owner_email=f"owner@{spec.slug}.test",
        owner_password="a-long-unrelated-passphrase-42",  # noqa: S106 -- a bench tenant's owner
        plan=plans[spec.plans[-1]],
    ).tenant


def tenants_clone(specs: list[TenantSpec], template: Tenant, plans: list[Plan]) -> list[Tenant]:
    """The other tenants: schemas cloned from the template's, rows bulk-inserted (no schema created)."""
    schemas_clone(template.schema_name, [schema_name_for(spec.slug) for spec in specs])
    tenants = Tenant.objects.bulk_create(
        Tenant(
            slug=spec.slug,
            name=f"Bench billing {spec.index:04d}",
            schema_name=schema_name_for(spec.slug),
            plan=plans[spec.plans[-1]],
        )
        for spec in specs
    )
    Domain.objects.bulk_create(
        Domain(domain=tenant_domain_for(t.slug), tenant=t, is_primary=True) for t in tenants
    )
    return tenants


def plan_history_set(
    specs: list[TenantSpec], tenants: list[Tenant], plans: list[Plan], since: datetime
) -> None:
    """Every tenant created at `since` on its first plan; the plan changers on their second from change_ms."""
    Tenant.objects.filter(slug__startswith=SLUG_PREFIX).update(created_at=since)
    PlanAssignment.objects.filter(tenant__slug__startswith=SLUG_PREFIX).delete()
    PlanAssignment.objects.bulk_create(
        PlanAssignment(tenant=tenant, plan=plans[plan], starts_at=since if n == 0 else moment(spec.change_ms))
        for spec, tenant in zip(specs, tenants, strict=True)
        for n, plan in enumerate(spec.plans)
    )


def schemas_clone(template: str, names: list[str]) -> None:
    """Each schema as a copy of `template`'s tables (indexes, constraints, identity) and migration rows."""
    with psycopg.connect(conninfo(), autocommit=True) as conn:  # so that transaction() commits
        query = "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename"
        tables = [row[0] for row in conn.execute(query, (template,))]
        for start in range(0, len(names), 10):  # a schema takes ~60 locks (max_locks_per_transaction)
            with conn.transaction():
                for name in names[start : start + 10]:
                    schema_clone(conn, template, name, tables)


def schema_clone(conn: psycopg.Connection[Any], template: str, name: str, tables: list[str]) -> None:
    new, old = sql.Identifier(name), sql.Identifier(template)
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(new))
    for table in tables:
        like = sql.SQL("CREATE TABLE {}.{} (LIKE {}.{} INCLUDING ALL)")
        conn.execute(like.format(new, sql.Identifier(table), old, sql.Identifier(table)))
    for table in ("django_migrations", "django_content_type"):
        target = sql.Identifier(name, table)
        copy = sql.SQL("INSERT INTO {} OVERRIDING SYSTEM VALUE SELECT * FROM {}")
        conn.execute(copy.format(target, sql.Identifier(template, table)))
        sequence = sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'id'), max(id)) FROM {}")
        conn.execute(sequence.format(sql.Literal(f'"{name}".{table}'), target))


def conninfo() -> str:
    return os.environ["DATABASE_URL"]


def moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000, tz=UTC) + timedelta(milliseconds=ms % 1000)


# -- setup: records ------------------------------------------------------------------------------------------
class Prices:
    """Unit prices exactly as the gateway computes them: per plan, model and answer or cache hit."""

    def __init__(self, plans: list[Plan]) -> None:
        self.pricing: list[PlanPricing] = [plan_pricing_load(plan) for plan in plans]
        self.info: dict[str, ModelInfo] = {m.name: m.info() for m in CatalogModel.objects.all()}
        self._units: dict[tuple[int, str, bool], UnitPrices] = {}

    def units(self, plan: int, model: str, hit: bool) -> UnitPrices:
        key = (plan, model, hit)
        if key not in self._units:
            pricing = self.pricing[plan]
            units = pricing.unit_prices(self.info[model])
            self._units[key] = units.percent(pricing.hit_percent) if hit else units
        return self._units[key]


@dataclass(slots=True)
class Loaded:
    records: int = 0
    price: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    per_tenant: list[int] = field(default_factory=list)


def records_load(specs: list[TenantSpec], prices: Prices, args: argparse.Namespace) -> Loaded:
    start, end = period_bounds(args.period)
    start_ms, period_ms = int(start.timestamp() * 1000), int((end - start).total_seconds() * 1000)
    rng = np.random.default_rng(args.seed + 1)
    loaded = Loaded()
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)
    with psycopg.connect(conninfo()) as conn:
        for spec in specs:
            table = sql.Identifier(schema_name_for(spec.slug), "gateway_requestrecord")
            with (
                conn.cursor() as cursor,
                cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, columns)) as copy,
            ):
                batch: list[str] = []
                for row in tenant_rows(spec, prices, rng, start_ms, period_ms, loaded):
                    batch.append(row)
                    if len(batch) == 5000:
                        copy.write("".join(batch))
                        batch.clear()
                copy.write("".join(batch))
            conn.commit()
            loaded.per_tenant.append(spec.records)
    return loaded


@dataclass(frozen=True, slots=True)
class Draws:
    """One tenant's random choices, drawn at once with numpy (a loop in Python then only formats)."""

    created: list[int]
    stamps: list[str]
    picks: list[int]
    outcome: list[float]
    fallback: list[bool]
    stream: list[bool]
    tokens_in: list[int]
    tokens_out: list[int]
    latency: list[int]

    @classmethod
    def of(cls, spec: TenantSpec, rng: np.random.Generator, start_ms: int, period_ms: int) -> Draws:
        n = spec.records
        created = np.sort(start_ms + rng.integers(0, period_ms, n))
        return cls(
            created=created.tolist(),
            stamps=np.datetime_as_string(created.astype("datetime64[ms]"), unit="ms").tolist(),
            picks=rng.choice(len(spec.models), size=n, p=spec.weights).tolist(),
            outcome=rng.random(n).tolist(),
            fallback=(rng.random(n) < FALLBACK_SHARE).tolist(),
            stream=(rng.random(n) < 0.4).tolist(),
            tokens_in=np.clip(rng.lognormal(math.log(1200), 1.0, n), 1, 200_000).astype(int).tolist(),
            tokens_out=np.clip(rng.lognormal(math.log(250), 0.9, n), 1, 16_000).astype(int).tolist(),
            latency=rng.integers(80, 9000, n).tolist(),
        )


def tenant_rows(
    spec: TenantSpec, prices: Prices, rng: np.random.Generator, start_ms: int, period_ms: int, loaded: Loaded
) -> Iterator[str]:
    """The tenant's records as lines of COPY text, in time order."""
    d = Draws.of(spec, rng, start_ms, period_ms)
    for k in range(spec.records):
        request_id, stamp = f"bb{spec.index:04d}-{k:07d}", d.stamps[k] + "Z"
        requested, plan, outcome = spec.models[d.picks[k]], spec.plan_at(d.created[k]), d.outcome[k]
        loaded.records += 1
        if outcome < ERROR_SHARE:
            units = prices.units(plan, requested, False)
            yield failed_row(request_id, stamp, prices.info[requested], units, outcome)
            continue
        status = (
            "hit-exact"
            if outcome < ERROR_SHARE + EXACT_SHARE
            else "hit-semantic"
            if outcome < ERROR_SHARE + EXACT_SHARE + SEMANTIC_SHARE
            else "miss"
        )
        fallback = status == "miss" and d.fallback[k] and len(spec.models) > 1
        served = spec.models[(d.picks[k] + 1) % len(spec.models)] if fallback else requested
        info, tin, tout = prices.info[served], d.tokens_in[k], d.tokens_out[k]
        units = prices.units(plan, served, status != "miss")
        cost = provider_cost(info, tin, tout)
        price = units.amount(tin, tout)
        loaded.price += price
        loaded.input_tokens += tin
        loaded.output_tokens += tout
        attempts = []
        if fallback:
            attempts.append(attempt(prices.info[requested], 503, "unavailable", 40))
        if status == "miss":
            attempts.append(attempt(info, 200, "", d.latency[k]))
        hit = status != "miss"
        fields = (
            *(request_id, stamp, stamp, "", requested, served, info.provider, "", json.dumps(attempts)),
            *("1" if fallback else "0", str(tin), str(tout), "f", f"{0 if hit else cost:f}", f"{price:f}"),
            *(f"{units.input:f}", f"{units.output:f}", str(3 if hit else d.latency[k])),
            *(NULL if hit else str(d.latency[k] // 4), status, "200", "", "t" if d.stream[k] else "f", "f"),
            *(("1.0" if status == "hit-exact" else "0.95") if hit else NULL, "{}", f"{cost if hit else 0:f}"),
        )
        yield "\t".join(fields) + "\n"


NULL = "\\N"


def attempt(info: ModelInfo, status: int, error: str, latency_ms: int) -> dict[str, Any]:
    return {
        "model": info.name,
        "provider": info.provider,
        "status": status,
        "error": error,
        "latency_ms": latency_ms,
    }


def failed_row(request_id: str, stamp: str, info: ModelInfo, units: UnitPrices, outcome: float) -> str:
    """A failed request: refused by the limiter (429, no upstream call) or failed upstream (502, 0 tokens)."""
    refused = outcome < ERROR_SHARE / 2
    attempts = [] if refused else [attempt(info, 502, "upstream_error", 900)]
    provider = "" if refused else info.provider
    status, error, latency = ("429", "rate_limited", "2") if refused else ("502", "upstream_error", "900")
    fields = (
        *(request_id, stamp, stamp, "", info.name, "", provider, "", json.dumps(attempts), "0", "0", "0"),
        *("f", "0", "0", f"{units.input:f}", f"{units.output:f}", latency, NULL, "miss", status, error),
        *("f", "f", NULL, "{}", "0"),
    )
    return "\t".join(fields) + "\n"


def tables_vacuum(specs: list[TenantSpec]) -> None:
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        for spec in specs:
            table = sql.Identifier(schema_name_for(spec.slug), "gateway_requestrecord")
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(table))


def setup(args: argparse.Namespace) -> None:
    if Tenant.objects.filter(slug__startswith=SLUG_PREFIX).exists():
        sys.exit("billing_setup: bench tenants exist already; bench/billing.sh starts from a new database")
    start, end = period_bounds(args.period)
    since = (start - timedelta(days=1)).replace(day=1)
    timings: dict[str, float] = {}
    load_before, busy_before, started = os.getloadavg(), machine_busy_cpu(), time.perf_counter()
    with timed(timings, "plans and tenant specs"):
        plans = plans_ensure()
        specs = tenant_specs(args, int(start.timestamp() * 1000), int((end - start).total_seconds() * 1000))
    with timed(timings, "template tenant (tenant_create, migrated)"):
        template = template_create(specs[0], plans)
    with timed(timings, f"{len(specs) - 1} more tenants (cloned schemas, bulk rows)"):
        tenants = [template, *tenants_clone(specs[1:], template, plans)]
        plan_history_set(specs, tenants, plans, since)
    prices = Prices(plans)
    with timed(timings, f"{args.records:,} records (generated, priced, COPY)"):
        loaded = records_load(specs, prices, args)
    with timed(timings, "VACUUM ANALYZE of the record tables"):
        tables_vacuum(specs)
    counts = sorted(loaded.per_tenant, reverse=True)
    busy_share = (machine_busy_cpu() - busy_before) / (time.perf_counter() - started)
    out = {
        "args": vars(args),
        "timings_s": timings,
        "setup_s": sum(timings.values()),
        "load_average_before_setup": load_before,
        "machine_busy_cpu_share_during_setup": busy_share,
        "records": loaded.records,
        "records_price": str(loaded.price),
        "records_input_tokens": loaded.input_tokens,
        "records_output_tokens": loaded.output_tokens,
        "records_per_tenant": {
            "max": counts[0],
            "top10": counts[:10],
            "median": statistics.median(counts),
            "min": counts[-1],
            "idle_tenants": counts.count(0),
        },
        "plan_changes": sum(len(spec.plans) > 1 for spec in specs),
        "records_by_tenant": loaded.per_tenant,
        "record_tables_bytes": record_tables_bytes(),
    }
    SETUP_FILE.write_text(json.dumps(out, indent=1, default=str))
    for what, seconds in timings.items():
        print(f"setup: {what}: {seconds:.1f} s")
    print(
        f"setup: {loaded.records:,} records; per tenant max {counts[0]:,}, median {statistics.median(counts)}"
    )


def record_tables_bytes() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relname = 'gateway_requestrecord' AND n.nspname LIKE 't_bb_%%'"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


@contextmanager
def timed(timings: dict[str, float], what: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[what] = time.perf_counter() - started


TICK = os.sysconf("SC_CLK_TCK")


def machine_busy_cpu() -> float:
    """CPU seconds the whole machine spent busy (all CPUs, /proc/stat), to tell what other work ran."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / TICK


# -- main ----------------------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    """The flags of both steps (bench/billing.sh passes its own to both)."""
    parser = argparse.ArgumentParser(description="Billing at scale (bench/billing.sh): tenants, records, run")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--records", type=int, default=1_000_000, help="in all, over the tenants")
    parser.add_argument("--period", default="2026-10", help="a closed period, YYYY-MM")
    parser.add_argument("--zipf", type=float, default=1.0, help="records of the tenant of rank r ~ 1/r^zipf")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--localstripe-pid", type=int, default=0, help="for CPU accounting")
    parser.add_argument("--pg-pid", type=int, default=0, help="the postmaster, for CPU accounting")
    parser.add_argument("--json", type=Path, help="default bench/results/billing-<commit>-<time>.json")
    args = parser.parse_args()
    if not str(settings.DATABASES["default"]["NAME"]).endswith("_bench"):
        sys.exit("billing bench: run it on a benchmark database (bench/billing.sh)")
    if not settings.STRIPE_API_BASE or not settings.GATEHOUSE_STRIPE_LOCALSTRIPE:
        sys.exit("billing bench: STRIPE_API_BASE must point at localstripe (bench/billing.sh starts one)")
    if period_bounds(args.period)[1] > datetime.now(tz=UTC):
        sys.exit(f"billing bench: period {args.period} is not closed yet")
    return args


if __name__ == "__main__":
    setup(parse_args())
