"""Offline token counting: exact for OpenAI models, an estimate for every other model.

Used on the request hot path to estimate a request's prompt tokens before routing (context-window checks,
tokens per minute), and to count the output tokens of a response whose provider reported no usage
(e.g. a stream the client aborted), which the caller then flags as estimated. Budgets and token caps need
a figure that cannot be low: :func:`prompt_token_bound` / :class:`PromptBounds` (``bound``) give an upper
bound of what the provider can bill.

- OpenAI models (:func:`encoding_name_for` is not None): exact text counts with tiktoken's o200k_base
  (gpt-4o, gpt-4.1, gpt-4.5, o-series, gpt-5 family) or cl100k_base (gpt-4, gpt-3.5, embeddings), the rank
  files read from an installed package and checked by sha256 (see ``_encodings``). Nothing is downloaded.
- Every other model is an ESTIMATE: the o200k_base count multiplied by a per-vendor factor, rounded up.
  Anthropic (``claude*``, ``anthropic/*``): x1.20, as Claude's tokenizer (not public) yields about 10-30 %
  more tokens than o200k on English prose and code. The simulator (``sim/*``): x1.00, as it has no tokenizer
  of its own (if it reports usage through :func:`count_text`, usage and estimate agree). Unknown models:
  x1.10, as o200k's large vocabulary is among the most compact and other tokenizers (Llama, Mistral,
  Qwen...) count a little more.

Encodings load lazily, once per process, thread-safely; the first use costs about 0.2-0.3 s per encoding,
so call :func:`warm_up` when a serving process starts.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from typing import Any, Final, NamedTuple

import orjson
import tiktoken

from gateway.tokens import _encodings, _images
from gateway.tokens._chat import REPLY_PRIMING_TOKENS, TOKENS_PER_MESSAGE, TOKENS_PER_NAME
from gateway.tokens._encodings import TokenizerDataError
from gateway.tokens.bound import PromptBounds, prediction_token_bound, prompt_token_bound

__all__ = [
    "PromptBounds",
    "TokenizerDataError",
    "count_text",
    "encoding_name_for",
    "estimate_prompt_tokens",
    "prediction_token_bound",
    "prompt_token_bound",
    "warm_up",
]

# Estimate factors in percent, applied to the o200k_base count of a model without an exact encoding.
ANTHROPIC_FACTOR_PERCENT: Final = 120
SIMULATOR_FACTOR_PERCENT: Final = 100
UNKNOWN_FACTOR_PERCENT: Final = 110

_ESTIMATE_ENCODING: Final = "o200k_base"
_UNCOUNTED_PART_TYPES: Final = frozenset({"input_audio", "file"})  # binary payloads: not estimated


class _Profile(NamedTuple):
    model: str  # normalised name
    encoding: str  # the encoding used to count
    exact: bool
    factor_percent: int
    anthropic: bool


def _profile(model: object) -> _Profile:
    return _profile_for(model if isinstance(model, str) else "")


@functools.lru_cache(maxsize=2048)
def _profile_for(model: str) -> _Profile:
    name = _encodings.model_name(model)
    encoding = _encodings.exact_encoding(name)
    if encoding is not None:
        return _Profile(name, encoding, True, 100, False)
    if "claude" in name or name.startswith("anthropic/"):
        return _Profile(name, _ESTIMATE_ENCODING, False, ANTHROPIC_FACTOR_PERCENT, True)
    factor = SIMULATOR_FACTOR_PERCENT if name.startswith("sim/") else UNKNOWN_FACTOR_PERCENT
    return _Profile(name, _ESTIMATE_ENCODING, False, factor, False)


def encoding_name_for(model: str) -> str | None:
    """The tiktoken encoding that counts ``model``'s tokens exactly ("o200k_base" or "cl100k_base").

    None for a model whose counts are estimates (non-OpenAI, simulator, unknown, or an old OpenAI model on
    r50k/p50k). A leading "openai/" or "azure/" is ignored; the name table is tiktoken's.
    """
    profile = _profile(model)
    return profile.encoding if profile.exact else None


def count_text(text: str, model: str) -> int:
    """Number of tokens of ``text`` for ``model``: exact for OpenAI models, else an estimate.

    Special-token strings such as "<|endoftext|>" count as plain text, as the APIs treat them. For reasoning
    models only the visible text can be counted, not the hidden reasoning tokens. Never raises on odd input
    (a non-string is counted as its JSON); raises TokenizerDataError if the tokenizer data is not installed.
    """
    profile = _profile(model)
    encoding = _encodings.get_encoding(profile.encoding)
    return _scaled(_count_value(encoding, text), profile)


def estimate_prompt_tokens(body: dict[str, Any], model: str) -> int:
    """Prompt tokens of an OpenAI chat-completions request ``body`` for ``model``.

    Follows the OpenAI cookbook: 3 tokens per message plus the tokens of each of its fields (role, content,
    name...), 1 more for a ``name``, and 3 for the reply priming. Content may be a string or a list of parts:
    text parts are counted, image parts by the provider's image rule (see ``_images``; a flat estimate when
    the size is unknown), audio and file parts are not counted. ``tools``, ``functions`` and a
    ``response_format`` JSON schema are counted as their compact JSON, an approximation (OpenAI renders them
    in its own format). Tool calls in messages are counted the same way. For OpenAI models the text part is
    exact and the whole an estimate; for other models, see the module docstring.

    Never raises on odd input (missing fields, non-string content, wrong types): counts what is there.
    Raises TokenizerDataError if the tokenizer data is not installed.
    """
    profile = _profile(model)
    encoding = _encodings.get_encoding(profile.encoding)
    try:
        text_tokens, image_tokens = _body_tokens(encoding, profile, body)
    except Exception:  # unexpected shapes: count the body as text rather than fail the request
        text_tokens, image_tokens = _count_value(encoding, body) + REPLY_PRIMING_TOKENS, 0
    return _scaled(text_tokens, profile) + image_tokens


def warm_up(
    names: Iterable[str] = ("o200k_base", "cl100k_base"), *, background: bool = False
) -> threading.Thread | None:
    """Load encodings now rather than on the first request that needs them.

    o200k_base (every modern OpenAI model and all estimates) takes about 0.25 s and 75 MB, cl100k_base
    (gpt-4, gpt-3.5) about 0.1 s and 33 MB. With ``background=True`` the loading runs in a daemon thread,
    which is returned; a request needing an encoding meanwhile waits for it. In the foreground, raises
    TokenizerDataError if the tokenizer data is missing or altered, so a broken install fails at start-up.
    """
    wanted = tuple(names)

    def load_all() -> None:
        for name in wanted:
            _encodings.get_encoding(name)

    if not background:
        load_all()
        return None
    thread = threading.Thread(target=load_all, name="gateway-tokens-warm-up", daemon=True)
    thread.start()
    return thread


def _scaled(tokens: int, profile: _Profile) -> int:
    return (tokens * profile.factor_percent + 99) // 100


def _count_value(encoding: tiktoken.Encoding, value: object) -> int:
    """Tokens of a string; of anything else, its compact JSON (0 for None)."""
    if isinstance(value, str):
        return _encodings.count_tokens(encoding, value)
    if value is None:
        return 0
    try:
        text = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except Exception:  # e.g. nested deeper than JSON allows
        text = _flattened(value)
    return _encodings.count_tokens(encoding, text)


def _flattened(value: object) -> str:
    """The strings and scalars inside ``value`` with a bracket per container, without recursion."""
    pieces: list[str] = []
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            pieces.append(item)
        elif isinstance(item, dict):
            pieces.append("{")
            stack.extend(reversed([part for pair in item.items() for part in pair]))
        elif isinstance(item, list | tuple | set | frozenset):
            pieces.append("[")
            stack.extend(reversed(list(item)))
        elif item is not None:
            pieces.append(_safe_str(item))
    return " ".join(pieces)


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a __str__ that fails or recurses
        return ""


def _body_tokens(encoding: tiktoken.Encoding, profile: _Profile, body: object) -> tuple[int, int]:
    if not isinstance(body, dict):
        return _count_value(encoding, body) + REPLY_PRIMING_TOKENS, 0
    text_tokens = REPLY_PRIMING_TOKENS
    image_tokens = 0
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ([messages] if messages else []):
        text_tokens += TOKENS_PER_MESSAGE
        if not isinstance(message, dict):
            text_tokens += _count_value(encoding, message)
            continue
        for key, value in message.items():
            if key == "content":
                content_text, content_images = _content_tokens(encoding, profile, value)
                text_tokens += content_text
                image_tokens += content_images
            else:
                text_tokens += _count_value(encoding, value) + (TOKENS_PER_NAME if key == "name" else 0)
    for key in ("tools", "functions"):
        if body.get(key):
            text_tokens += _count_value(encoding, body[key])
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        text_tokens += _count_value(encoding, response_format.get("json_schema"))
    return text_tokens, image_tokens


def _content_tokens(encoding: tiktoken.Encoding, profile: _Profile, content: object) -> tuple[int, int]:
    if not isinstance(content, list):
        return _count_value(encoding, content), 0
    text_tokens = image_tokens = 0
    for part in content:
        if not isinstance(part, dict):
            text_tokens += _count_value(encoding, part)
            continue
        kind = part.get("type")
        if kind == "text":
            text_tokens += _count_value(encoding, part.get("text"))
        elif kind == "image_url" or (kind is None and "image_url" in part):
            image_tokens += _image_tokens(profile, part.get("image_url"))
        elif kind not in _UNCOUNTED_PART_TYPES:
            text_tokens += _count_value(encoding, part)
    return text_tokens, image_tokens


def _image_tokens(profile: _Profile, image: object) -> int:
    url, detail = (image.get("url"), image.get("detail")) if isinstance(image, dict) else (image, None)
    size = _images.image_size(url) if detail != "low" or profile.anthropic else None
    if profile.anthropic:
        return _images.anthropic_image_tokens(size)
    return _images.openai_image_tokens(profile.model, detail, size)
