"""The response cache as the gateway uses it: look up before the upstream call, store after the response.

Lookup order: the exact key (one indexed row, no embedding), then — if the tenant allows semantic hits and
the model can represent the prompt — the prompt's embedding against the nearest entries of the same scope.
A near entry is served only if its cosine similarity reaches the tenant's threshold **and** the false-hit
guard (`guard.py`) finds no difference that changes the answer (numbers, entities, negation, antonyms,
swapped roles); a difference in plain content words can still be overturned by the guard's second stage
(words only added to a nearly identical prompt, or synonyms by word embeddings). Up to
`GATEHOUSE_CACHE_CANDIDATES` nearest entries are tried, most similar first.

Text the model cannot represent (more than `MAX_UNKNOWN_SHARE` of its tokens are [UNK], e.g. Chinese or
Japanese: MiniLM's vocabulary lacks their characters, so different questions embed identically) is matched
exactly only, and stored without an embedding.

Storing runs after the response is complete, in the background; it reuses the lookup's embedding.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson

from gateway.cache import store
from gateway.cache.embedding import Embedding, embed_async, embed_many_async
from gateway.cache.guard import GuardVerdict, addition_allowed, guard_check, synonyms_cover
from gateway.cache.keys import CacheKey
from gateway.cache.policy import CachePolicy
from gateway.cache.replay import completion_from_chunks

log = logging.getLogger(__name__)

MAX_UNKNOWN_SHARE = 0.1
RETRY_SECONDS = 5.0  # after a failed lookup (database unreachable), requests skip the cache this long

_down_until = 0.0


@dataclass(frozen=True, slots=True)
class Hit:
    entry: store.Entry
    status: Literal["hit-exact", "hit-semantic"]
    similarity: float


@dataclass(slots=True)
class Lookup:
    """The outcome of a lookup, kept for storing the fresh answer after a miss."""

    key: CacheKey
    hit: Hit | None = None
    embedding: Embedding | None = None
    rejected: str = ""  # the guard's reason for the nearest candidate above the threshold, if it rejected one
    nearest: float | None = None  # the nearest entry's similarity (semantic path), hit or not

    @property
    def semantic(self) -> bool:
        """May the prompt be matched semantically? It was embedded (policy on) and the model represents it."""
        return self.embedding is not None and embedding_storable(self.embedding) is not None


def embedding_storable(embedding: Embedding) -> np.ndarray[Any, np.dtype[np.float32]] | None:
    """The vector to store and compare, or None for text the model cannot represent (exact matching only)."""
    return embedding.vector if embedding.unknown_share <= MAX_UNKNOWN_SHARE else None


async def cache_lookup_or_skip(
    schema: str, policy: CachePolicy, key: CacheKey, candidates: int
) -> Lookup | None:
    """`cache_lookup`, or None when the cache cannot answer now: the cache is an optimisation, so a fault
    there (database down, pool exhausted) sends the request to the upstream instead of failing it, and the
    following requests skip the cache for RETRY_SECONDS rather than each waiting for the same fault."""
    global _down_until
    if time.monotonic() < _down_until:
        return None
    try:
        return await cache_lookup(schema, policy, key, candidates)
    except Exception as error:
        _down_until = time.monotonic() + RETRY_SECONDS
        log.warning(
            "cache lookup failed (%s); skipping the cache for %.0f s", type(error).__name__, RETRY_SECONDS
        )
        return None


async def cache_lookup(schema: str, policy: CachePolicy, key: CacheKey, candidates: int) -> Lookup:
    """Find an entry that may answer `key`'s request in this tenant's cache."""
    lookup = Lookup(key)
    if key.lookup:
        entry = await store.entry_exact(schema, key.exact_key)
        if entry is not None:
            lookup.hit = Hit(entry, "hit-exact", 1.0)
            return lookup
    if not policy.semantic:
        return lookup
    lookup.embedding = await embed_async(key.prompt)
    if not key.lookup or not lookup.semantic:
        return lookup
    near = await store.candidates_nearest(schema, key.scope_key, lookup.embedding.vector, candidates)
    lookup.nearest = near[0].similarity if near else None
    for candidate in near:
        if candidate.similarity < policy.threshold:
            break
        verdict = guard_check(key.prompt, candidate.prompt)
        if not verdict.ok and not await _overturned(verdict, candidate.similarity):
            lookup.rejected = lookup.rejected or verdict.reason
            continue
        entry = await store.entry_by_id(schema, candidate.id)
        if entry is not None:
            lookup.hit = Hit(entry, "hit-semantic", candidate.similarity)
            return lookup
    return lookup


async def _overturned(verdict: GuardVerdict, similarity: float) -> bool:
    """The guard's second stage, for changed content words it left open: words only added to a nearly
    identical prompt, or each changed word replaced by a synonym (word embeddings, one batched call)."""
    mine, theirs = verdict.unmatched
    if not mine and not theirs:
        return False
    if addition_allowed(verdict.unmatched, similarity):
        return True
    if not mine or not theirs:
        return False
    words = list(dict.fromkeys([*mine, *theirs]))
    vectors = {word: e.vector for word, e in zip(words, await embed_many_async(words), strict=True)}
    return synonyms_cover(verdict.unmatched, vectors)


def cache_hit_later(schema: str, hit: Hit) -> None:
    """Count the hit (last hit, hit count: eviction keeps popular entries) after the response."""
    store.hit_count_later(schema, hit.entry.id)


@dataclass(frozen=True, slots=True)
class Answer:
    """A fresh answer: its chat.completion body (JSON requests) or its raw stream chunks (streams)."""

    requested_model: str
    served_model: str
    input_tokens: int
    output_tokens: int
    body: dict[str, Any] | None
    chunks_raw: list[bytes] | None

    def parts(self) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
        """The body and the chunks to store (parsing the stream's chunks: done here, off the hot path)."""
        if self.chunks_raw is None:
            return dict(self.body or {}), None
        chunks = []
        for raw in self.chunks_raw:
            chunk = orjson.loads(raw)
            chunk.pop("usage", None)
            chunks.append(chunk)
        usage = {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        return completion_from_chunks(chunks, usage), chunks


def cache_store_later(schema: str, policy: CachePolicy, lookup: Lookup, answer: Answer) -> None:
    """Store a fresh answer after the response has been sent; never raises, never delays the response."""
    store.later(_store(schema, policy, lookup, answer), "store")


async def _store(schema: str, policy: CachePolicy, lookup: Lookup, answer: Answer) -> None:
    embedding = lookup.embedding
    if policy.semantic and embedding is None:  # a refresh (no-cache) skipped the lookup's embedding
        embedding = await embed_async(lookup.key.prompt)
    vector = embedding_storable(embedding) if embedding is not None else None
    body, chunks = answer.parts()
    await store.entry_insert(
        schema,
        store.NewEntry(
            exact_key=lookup.key.exact_key,
            scope_key=lookup.key.scope_key,
            prompt=lookup.key.prompt,
            embedding=vector,
            requested_model=answer.requested_model,
            served_model=answer.served_model,
            body=body,
            chunks=chunks,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            ttl_seconds=policy.ttl_seconds,
        ),
        refresh=not lookup.key.lookup,
    )
