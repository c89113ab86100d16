"""Semantic-cache precision, recall and false-hit rate on labelled question pairs, via the real cache code.

For each pair (text_a, text_b, label): text_a's answer is stored in tenant `cacheeval`'s cache exactly as the
gateway stores an answer (`cache_key` -> embedding -> `store.entry_insert`), each pair in a scope of its own
(its own system prompt), so that a pair's lookup can only find its own entry; then text_b is looked up with
`cache_lookup`, the gateway's own function (exact key, embedding, HNSW query in PostgreSQL, threshold, guard).
Every lookup runs at the lowest threshold measured; the nearest entry's cosine and the guard's verdict then
give the outcome at every higher threshold (the guard does not depend on the threshold).

- hit at threshold t, without the guard: nearest cosine >= t; with the guard: also accepted by the guard.
- precision = label-1 hits / hits; recall = label-1 hits / label-1 pairs; false-hit rate = label-0 hits /
  label-0 pairs (the figure to watch: the labels are noisy, see the data's README).

Also checks a small hand-written set of adversarial pairs (direction swaps, negations, antonyms, changed
numbers and names: each must never be a hit at any threshold measured).

Run from the repository root with the benchmark database (bench/README.md):
    bench/cache_eval.sh [--limit N] [--data PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from gateway.cache import store  # noqa: E402
from gateway.cache.embedding import embedder  # noqa: E402
from gateway.cache.keys import CacheKey, cache_key  # noqa: E402
from gateway.cache.manage import cache_clear  # noqa: E402
from gateway.cache.policy import CachePolicy  # noqa: E402
from gateway.cache.service import cache_lookup, embedding_storable  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tenants.services import tenant_create  # noqa: E402

DATA = Path("/work/shared/data/cache-eval/qqp-dev-10k.jsonl")
THRESHOLDS = [round(0.80 + 0.02 * i, 2) for i in range(10)]  # 0.80 ... 0.98
SLUG = "cacheeval"
ADVERSARIAL = [
    (
        "How do I import goods from Canada and sell them in India?",
        "How do I import goods from India and sell them in Canada?",
    ),
    ("Is Python faster than Java?", "Is Java faster than Python?"),
    ("How do I convert USD to EUR?", "How do I convert EUR to USD?"),
    ("Who won the match between Brazil and Germany?", "Who lost the match between Brazil and Germany?"),
    ("Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?"),
    ("Why can I sleep at night?", "Why can't I sleep at night?"),
    (
        "What is the best programming language for beginners?",
        "What is the worst programming language for beginners?",
    ),
    ("How can I increase my credit score?", "How can I decrease my credit score?"),
    ("What should I do before an interview?", "What should I do after an interview?"),
    ("Please refund order 1234", "Please refund order 1243"),
    ("What was the population of Canada in 1990?", "What was the population of Canada in 2010?"),
    ("Is 17 a prime number?", "Is 19 a prime number?"),
    ("What is the capital of France?", "What is the capital of Germany?"),
    ("Who is the CEO of Apple?", "Who is the CEO of Microsoft?"),
    ("How tall is Mount Everest in meters?", "How tall is Mount Everest in feet?"),
    ("What are the side effects of ibuprofen?", "What are the side effects of acetaminophen?"),
    ("Can dogs eat grapes?", "Can cats eat grapes?"),
    ("How do I buy Bitcoin?", "How do I sell Bitcoin?"),
    ("What is the maximum speed on German highways?", "What is the minimum speed on German highways?"),
    ("How many calories are in 2 eggs?", "How many calories are in 3 eggs?"),
]


@dataclass(frozen=True)
class Outcome:
    label: int
    nearest: float  # cosine of the pair's entry (1.0 on an exact-key hit), -1 when none was found
    accepted: bool  # served by the real lookup at the lowest threshold (threshold and guard passed)
    reason: str  # the guard's reason when it refused the entry


def _key(pair: int, text: str) -> CacheKey:
    body = {
        "model": "sim/fast",
        "messages": [{"role": "system", "content": f"eval pair {pair}"}, {"role": "user", "content": text}],
    }
    key = cache_key(body, scope_model="sim/fast", max_temperature=1.0, cache_control=None)
    assert key is not None
    return key


async def _fill(schema: str, texts: list[str], policy: CachePolicy) -> None:
    keys = [_key(pair, text) for pair, text in enumerate(texts)]
    for start in range(0, len(keys), 64):
        batch = keys[start : start + 64]
        embeddings = embedder().embed([key.prompt for key in batch])  # the lookup path embeds one by one
        for key, embedding in zip(batch, embeddings, strict=True):
            await store.entry_insert(
                schema,
                store.NewEntry(
                    exact_key=key.exact_key,
                    scope_key=key.scope_key,
                    prompt=key.prompt,
                    embedding=embedding_storable(embedding),
                    requested_model="sim/fast",
                    served_model="sim/fast",
                    body={"choices": []},
                    chunks=None,
                    input_tokens=0,
                    output_tokens=0,
                    ttl_seconds=policy.ttl_seconds,
                ),
                refresh=True,
            )


async def _evaluate(schema: str, pairs: list[tuple[str, str, int]], policy: CachePolicy) -> list[Outcome]:
    await _fill(schema, [a for a, _b, _label in pairs], policy)
    outcomes = []
    for pair, (_a, b, label) in enumerate(pairs):
        lookup = await cache_lookup(schema, policy, _key(pair, b), candidates=1)
        nearest = (
            lookup.hit.similarity if lookup.hit else (lookup.nearest if lookup.nearest is not None else -1.0)
        )
        outcomes.append(Outcome(label, nearest, lookup.hit is not None, lookup.rejected))
    return outcomes


def _table(outcomes: list[Outcome], guarded: bool) -> list[dict[str, float]]:
    positives = sum(o.label for o in outcomes)
    negatives = len(outcomes) - positives
    rows = []
    for t in THRESHOLDS:
        hits = [o for o in outcomes if o.nearest >= t - 1e-9 and (o.accepted or not guarded)]
        true = sum(o.label for o in hits)
        rows.append(
            {
                "threshold": t,
                "hits": len(hits),
                "precision": true / len(hits) if hits else 1.0,
                "recall": true / positives if positives else 0.0,
                "false_hit_rate": (len(hits) - true) / negatives if negatives else 0.0,
            }
        )
    return rows


def _print(title: str, rows: list[dict[str, float]]) -> None:
    print(f"\n{title}\n\n| threshold | hits | precision | recall | false-hit rate |\n|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['threshold']:.2f} | {int(r['hits'])} | {r['precision']:.1%} | {r['recall']:.1%} "
            f"| {r['false_hit_rate']:.2%} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=0, help="only the first N pairs")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not str(settings.DATABASES["default"]["NAME"]).endswith("_bench"):
        sys.exit("cache_eval: run it on the benchmark database (bench/cache_eval.sh)")
    lines = args.data.read_text().splitlines()
    rows = [json.loads(line) for line in lines[: args.limit or None]]
    pairs = [(r["text_a"], r["text_b"], int(r["label"])) for r in rows]
    tenant = (
        Tenant.objects.filter(slug=SLUG).first()
        or tenant_create(
            slug=SLUG, name="Cache evaluation", owner_email="cacheeval@example.com", owner_password=None
        ).tenant
    )
    cache_clear(tenant=tenant)
    policy = CachePolicy(True, True, THRESHOLDS[0], 24 * 3600, 10**6, 1.0)
    started = time.monotonic()
    outcomes = asyncio.run(_evaluate(tenant.schema_name, pairs, policy))
    cache_clear(tenant=tenant)
    adversarial = asyncio.run(_evaluate(tenant.schema_name, [(a, b, 0) for a, b in ADVERSARIAL], policy))
    cache_clear(tenant=tenant)
    plain, guarded = _table(outcomes, guarded=False), _table(outcomes, guarded=True)
    print(
        f"{len(pairs)} pairs from {args.data.name} ({sum(o.label for o in outcomes)} label 1), "
        f"{time.monotonic() - started:.0f} s, embedder {embedder().name}"
    )
    _print("Plain cosine (no guard)", plain)
    _print("With the false-hit guard (the gateway's lookup)", guarded)
    reasons: dict[str, list[int]] = {}
    for o in outcomes:
        if o.reason and o.nearest >= policy.threshold:
            reasons.setdefault(o.reason, [0, 0])[o.label] += 1
    print("\nGuard refusals of entries above 0.80, by rule: (label 0 refused, label 1 refused)")
    for reason, (zero, one) in sorted(reasons.items()):
        print(f"- {reason}: {zero}, {one}")
    served = [(a, b, o.nearest) for (a, b), o in zip(ADVERSARIAL, adversarial, strict=True) if o.accepted]
    print(f"\nAdversarial pairs served at 0.80: {len(served)} of {len(ADVERSARIAL)}")
    for a, b, similarity in served:
        print(f"- {similarity:.3f} {a!r} -> {b!r}")
    if args.json:
        args.json.write_text(json.dumps({"plain": plain, "guarded": guarded, "reasons": reasons}, indent=2))


if __name__ == "__main__":
    main()
