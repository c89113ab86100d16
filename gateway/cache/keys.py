"""Which requests the cache may answer, and the keys that decide which entries may answer them.

An entry answers a request only within the same **scope**: everything but the last user turn that changes
the answer — the model or chain (`scope_model`, given by the caller), the conversation before the last user
turn (system prompt included), sampling parameters, tools, response format, and any non-text part (an image)
of the last user turn. `scope_key` hashes that; `exact_key` hashes the scope plus the normalised text of the
last user turn. The exact key is looked up first (one indexed row); the semantic path compares the last user
turn's embedding only with entries of the same scope.

Not cached (neither looked up nor stored): `n > 1` (several sampled answers), a temperature above the
tenant's ceiling, conversations with tool results or assistant tool calls (the answer depends on live data),
requests whose last message is not a user message, and `Cache-Control: no-store`. `Cache-Control: no-cache`
skips the lookup but stores the fresh answer (a refresh).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.providers.base import JSON

# Request fields that change the answer (besides messages and model). Everything else (stream,
# stream_options, user, metadata, store, service_tier...) does not.
ANSWER_FIELDS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "reasoning_effort",
    "modalities",
    "prediction",
    "web_search_options",
    "verbosity",
)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class CacheKey:
    scope_key: str
    exact_key: str
    prompt: str  # the last user turn's text, normalised: what is embedded and compared
    lookup: bool  # False with Cache-Control: no-cache (refresh: store only)


def normalise(text: str) -> str:
    """Unicode NFKC, whitespace collapsed, trimmed. Case and punctuation are kept: they can matter."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def cache_key(
    body: JSON, *, scope_model: str, max_temperature: float, cache_control: str | None
) -> CacheKey | None:
    """The request's cache key, or None when the cache must neither answer nor store it."""
    directives = {part.strip().lower() for part in (cache_control or "").split(",")}
    if "no-store" in directives:
        return None
    if (body.get("n") or 1) > 1:
        return None
    temperature = body.get("temperature")
    if temperature is not None and temperature > max_temperature:
        return None
    messages: list[Any] = body["messages"]
    if not messages or messages[-1].get("role") != "user":
        return None
    if any(m.get("role") in ("tool", "function") or m.get("tool_calls") for m in messages):
        return None
    text, other_parts = _split(messages[-1].get("content"))
    prompt = normalise(text)
    if not prompt:
        return None
    scope = {
        "model": scope_model,
        "context": messages[:-1],
        "name": messages[-1].get("name"),
        "parts": other_parts,
        **{name: body[name] for name in ANSWER_FIELDS if body.get(name) is not None},
    }
    scope_key = _digest(orjson.dumps(scope, option=orjson.OPT_SORT_KEYS))
    exact_key = _digest(scope_key.encode() + b"\0" + prompt.encode())
    return CacheKey(scope_key, exact_key, prompt, lookup="no-cache" not in directives)


def _split(content: Any) -> tuple[str, list[Any]]:
    """The text of a message's content, and its other parts (images...), which go into the scope."""
    if isinstance(content, str):
        return content, []
    texts, others = [], []
    for part in content or ():
        if isinstance(part, dict) and part.get("type") == "text":
            texts.append(str(part.get("text", "")))
        else:
            others.append(part)
    return "\n".join(texts), others


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
