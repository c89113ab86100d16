"""Semantic-cache speed: embedding, ANN query, whole lookup, and hits end to end through the gateway.

Fills tenant `cachespeed`'s cache to each size (default 10,000 then 100,000 entries, all in one scope, the
worst case for the scope filter), then measures, one request at a time:

- embedding: one prompt on the embedding thread (one onnxruntime thread), short (a question) and 40 words;
- ANN query alone: `store.candidates_nearest` (HNSW, cosine, top 5) for a fresh prompt's vector;
- semantic lookup: `cache_lookup` (exact key miss, embedding, ANN, guard) of prompts not in the cache;
- the naive reference: every embedding of the scope fetched and the cosine computed in Python (a few runs);
- end to end through a real gateway (uvicorn, one process, default settings, access log to
  bench/results/cache-speed-gateway.log): an exact hit and a semantic hit (the same prompt with its case
  swapped: a different exact key, the same embedding), client-side latency of the whole request (httpx).

Entries: the question texts of ../shared/data/cache-eval (20k) embedded for real; beyond that, the same
vectors with small Gaussian noise (renormalised) and a suffix, so the index holds distinct points of a
realistic distribution. Run: `bench/cache.sh speed [--sizes 10000 100000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402
from pgvector.psycopg import register_vector  # noqa: E402

from gateway.cache import store  # noqa: E402
from gateway.cache.embedding import embed, embed_async, embedder  # noqa: E402
from gateway.cache.keys import cache_key, normalise  # noqa: E402
from gateway.cache.manage import cache_clear, cache_settings_set  # noqa: E402
from gateway.cache.policy import CachePolicy  # noqa: E402
from gateway.cache.service import cache_lookup  # noqa: E402
from gateway.keys import api_key_create  # noqa: E402
from gateway.limits.manage import limits_set  # noqa: E402
from gateway.models import CacheEntry  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tenants.services import tenant_create  # noqa: E402

DATA = Path("/work/shared/data/cache-eval/qqp-dev-10k.jsonl")
SLUG = "cachespeed"
PORT = 9200


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(samples), "p95": pct(samples, 0.95), "n": len(samples)}


def body_of(prompt: str) -> dict[str, Any]:
    return {"model": "sim/fast", "messages": [{"role": "user", "content": prompt}]}


def key_of(prompt: str) -> Any:
    return cache_key(body_of(prompt), scope_model="sim/fast", max_temperature=1.0, cache_control=None)


def texts() -> list[str]:
    """The evaluation file's distinct questions (distinct once normalised, as the cache keys them)."""
    seen: dict[str, None] = {}
    for line in DATA.read_text().splitlines():
        row = json.loads(line)
        seen.setdefault(normalise(row["text_a"]), None)
        seen.setdefault(normalise(row["text_b"]), None)
    return [t for t in seen if t]


def embedded(prompts: list[str]) -> np.ndarray[Any, Any]:
    """The prompts' vectors, computed once and kept in bench/results/ (embedding 19k texts takes minutes)."""
    digest = hashlib.sha256("\n".join(prompts).encode()).hexdigest()[:16]
    path = ROOT / "bench" / "results" / f".cache-speed-vectors-{digest}.npy"
    if path.exists():
        loaded: np.ndarray[Any, Any] = np.load(path)
        return loaded
    vectors = np.stack(
        [e.vector for s in range(0, len(prompts), 64) for e in embedder().embed(prompts[s : s + 64])]
    )
    np.save(path, vectors)
    return vectors


def fill(schema: str, prompts: list[str], vectors: np.ndarray[Any, Any], target: int) -> None:
    """Bring the cache to `target` entries with COPY (real texts first, then noisy copies)."""
    with schema_context(schema):
        have = CacheEntry.objects.count()
    rng = np.random.default_rng(have)
    answer = json.dumps(
        {
            "object": "chat.completion",
            "model": "sim/fast",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "A cached answer."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14},
        }
    )
    columns = (
        "exact_key, scope_key, prompt, embedding, requested_model, served_model, body, input_tokens, "
        "output_tokens, created_at, expires_at, hit_count"
    )
    with psycopg.connect(store._conninfo()) as connection:
        register_vector(connection)
        with (
            connection.cursor() as cursor,
            cursor.copy(f'COPY "{schema}".gateway_cacheentry ({columns}) FROM STDIN') as copy,
        ):
            for n in range(have, target):
                base = n % len(prompts)
                prompt = (
                    prompts[base] if n < len(prompts) else f"{prompts[base]} (variant {n // len(prompts)})"
                )
                vector = vectors[base]
                if n >= len(prompts):
                    vector = vector + rng.normal(0, 0.02, vector.shape).astype(np.float32)
                    vector = vector / np.linalg.norm(vector)
                key = key_of(prompt)
                copy.write_row(
                    (
                        key.exact_key,
                        key.scope_key,
                        key.prompt,
                        "[" + ",".join(f"{x:.6f}" for x in vector) + "]",
                        "sim/fast",
                        "sim/fast",
                        answer,
                        10,
                        4,
                        "now()",
                        "2100-01-01",
                        0,
                    )
                )
    with psycopg.connect(store._conninfo()) as connection:
        connection.execute(f'ANALYZE "{schema}".gateway_cacheentry')


def naive(schema: str, scope_key: str, vector: list[float]) -> tuple[float, float]:
    """Fetch every embedding of the scope, cosine in Python; returns (seconds, best similarity)."""
    started = time.perf_counter()
    with psycopg.connect(store._conninfo()) as connection:
        rows = connection.execute(
            f'SELECT id, embedding::text FROM "{schema}".gateway_cacheentry WHERE scope_key = %s',  # noqa: S608
            (scope_key,),
        ).fetchall()
    best = -1.0
    for _id, text in rows:
        other = [float(x) for x in text[1:-1].split(",")]
        best = max(best, sum(a * b for a, b in zip(vector, other, strict=True)))  # unit vectors: dot = cosine
    return time.perf_counter() - started, best


async def lookups(schema: str, probes: list[str], policy: CachePolicy) -> dict[str, dict[str, float]]:
    ann, whole, embedding = [], [], []
    for prompt in probes:
        started = time.perf_counter()
        vector = (await embed_async(prompt)).vector
        embedding.append(time.perf_counter() - started)
        started = time.perf_counter()
        await store.candidates_nearest(schema, key_of(prompt).scope_key, vector, 5)
        ann.append(time.perf_counter() - started)
        started = time.perf_counter()
        await cache_lookup(schema, policy, key_of(prompt + " ?"), 5)
        whole.append(time.perf_counter() - started)
    return {"embed_ms": ms(embedding), "ann_ms": ms(ann), "lookup_ms": ms(whole)}


def ms(samples: list[float]) -> dict[str, float]:
    return {k: (v * 1000 if k != "n" else v) for k, v in summary(samples).items()}


WRK_SCRIPT = """
wrk.method = os.getenv("WRK_METHOD")
wrk.body = os.getenv("WRK_BODY")
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. os.getenv("WRK_KEY")
done = function(summary, latency, requests)
  io.write(string.format("WRK %d %d %.1f %.1f %.1f\\n", summary.requests, summary.errors.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def wrk(url: str, key: str, method: str, body: dict[str, Any] | None) -> dict[str, float]:
    """One connection, 5 s, the same request again and again: wrk's own overhead is ~0.05 ms, httpx's ~0.5."""
    script = ROOT / "bench" / "results" / "cache-speed.lua"
    script.write_text(WRK_SCRIPT)
    path = "/v1/chat/completions" if method == "POST" else "/v1/models"
    env = {**os.environ, "WRK_METHOD": method, "WRK_BODY": json.dumps(body) if body else "", "WRK_KEY": key}
    out = subprocess.run(  # noqa: S603
        ["wrk", "-t1", "-c1", "-d5s", "-s", str(script), url + path],  # noqa: S607
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    _, requests, errors, p50, p95, p99 = next(
        line for line in out.splitlines() if line.startswith("WRK")
    ).split()
    return {
        "p50": float(p50) / 1000,
        "p95": float(p95) / 1000,
        "p99": float(p99) / 1000,
        "n": float(requests),
        "non_2xx": float(errors),
    }


def gateway_hits(key: str, prompts: list[str]) -> dict[str, dict[str, float]]:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--port",
        str(PORT),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--lifespan",
        "off",
        "--log-level",
        "warning",
    ]
    log = (ROOT / "bench" / "results" / "cache-speed-gateway.log").open("ab")  # its access log, defaults on
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        url = f"http://127.0.0.1:{PORT}"
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        headers = {"authorization": f"Bearer {key}"}
        results: dict[str, list[float]] = {"hit-exact": [], "hit-semantic": [], "models": []}
        semantic = ""  # a prompt that is a semantic hit, for wrk
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for prompt in prompts[:20]:  # warm-up
                client.post("/v1/chat/completions", json=body_of(prompt))
            for (
                _
            ) in prompts:  # the floor: the same client, an authenticated request with no cache or upstream
                started = time.perf_counter()
                client.get("/v1/models")
                results["models"].append(time.perf_counter() - started)
            for prompt in prompts:
                for variant in (prompt, prompt.swapcase()):
                    started = time.perf_counter()
                    response = client.post("/v1/chat/completions", json=body_of(variant))
                    elapsed = time.perf_counter() - started
                    status = response.headers.get("x-gatehouse-cache", "")
                    if status in results:
                        results[status].append(elapsed)
                    if status == "hit-semantic":
                        semantic = semantic or variant
        out = {status: ms(samples) for status, samples in results.items() if samples}
        for name, request in (
            ("wrk hit-exact", ("POST", body_of(prompts[0]))),
            ("wrk hit-semantic", ("POST", body_of(semantic))),
            ("wrk models", ("GET", None)),
        ):
            out[name] = wrk(url, key, *request)
        return out
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not str(settings.DATABASES["default"]["NAME"]).endswith("_bench"):
        sys.exit("cache_speed: run it on the benchmark database (bench/cache.sh speed)")
    tenant = (
        Tenant.objects.filter(slug=SLUG).first()
        or tenant_create(
            slug=SLUG, name="Cache speed", owner_email="cachespeed@example.com", owner_password=None
        ).tenant
    )
    cache_clear(tenant=tenant)
    cache_settings_set(tenant=tenant, enabled=True, semantic=True, threshold=0.9, max_entries=1_000_000)
    # Limits far above the load: the limiter runs on every request, refusing none.
    limits_set(tenant=tenant, above_plan=True, rpm=1_000_000_000, tpm=2_000_000_000, concurrency=100_000)
    key = api_key_create(tenant=tenant, name="cache speed").raw_key
    corpus = texts()
    random.Random(7).shuffle(corpus)  # noqa: S311
    probes, stored_prompts = corpus[: args.probes], corpus[args.probes :]
    started = time.monotonic()
    vectors = embedded(stored_prompts)
    print(f"embedded {len(stored_prompts)} texts in {time.monotonic() - started:.0f} s")
    forty = " ".join(corpus[:6])
    forty = " ".join(forty.split()[:40])
    embed(forty)
    single: dict[str, list[float]] = {"question_ms": [], "forty_words_ms": []}
    for prompt in probes[:100]:
        t = time.perf_counter()
        embed(prompt)
        single["question_ms"].append(time.perf_counter() - t)
        t = time.perf_counter()
        embed(forty)
        single["forty_words_ms"].append(time.perf_counter() - t)
    results: dict[str, Any] = {"embedding": {k: ms(v) for k, v in single.items()}, "sizes": {}}
    print("embedding, one prompt, one thread:", results["embedding"])
    policy = CachePolicy(True, True, 0.9, 3600, 10**6, 1.0)
    for size in args.sizes:
        started = time.monotonic()
        fill(tenant.schema_name, stored_prompts, vectors, size)
        print(f"\n{size} entries (filled in {time.monotonic() - started:.0f} s)")
        row: dict[str, Any] = asyncio.run(lookups(tenant.schema_name, probes, policy))
        naive_runs = [
            naive(tenant.schema_name, key_of(p).scope_key, embed(p).as_list())[0] for p in probes[:3]
        ]
        row["naive_ms"] = ms(naive_runs)
        row["gateway"] = gateway_hits(key, stored_prompts[: args.probes])
        row["speedup_vs_naive"] = row["naive_ms"]["p50"] / row["ann_ms"]["p50"]
        row["lookup_speedup_vs_naive"] = row["naive_ms"]["p50"] / row["lookup_ms"]["p50"]
        results["sizes"][size] = row
        print(json.dumps(row, indent=1))
    cache_clear(tenant=tenant)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
