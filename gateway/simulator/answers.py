"""What the simulated model says: deterministic text derived from the prompt, cut by max_tokens and stop
sequences, or a tool call. Pure functions, shared by both wire formats.

One token is one word with its following space; prompt tokens are the characters of all message text / 4,
rounded up (at least 1).
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from gateway.simulator.parsing import SimRequest, ToolSpec
from gateway.simulator.profiles import ECHO, Profile

Finish = Literal["stop", "length", "tool_calls"]

VOCABULARY = [
    "the",
    "gateway",
    "routes",
    "each",
    "request",
    "to",
    "a",
    "model",
    "that",
    "answers",
    "with",
    "simulated",
    "tokens",
    "while",
    "the",
    "meter",
    "counts",
    "usage",
    "for",
    "every",
    "tenant",
    "and",
    "the",
    "cache",
    "keeps",
    "recent",
    "replies",
    "close",
    "so",
    "latency",
    "stays",
    "low",
    "under",
    "load",
    "when",
    "providers",
    "fail",
    "over",
    "quickly",
    "to",
    "healthy",
    "fallbacks",
    "in",
    "order",
    "without",
    "losing",
    "a",
    "single",
    "stream",
]
_PIECE = re.compile(r"\s*\S+\s*")


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str  # without the provider's prefix ("call_" / "toolu_")
    name: str
    arguments: str  # a JSON object, serialised


@dataclass(frozen=True, slots=True)
class Choice:
    """One answer. `pieces` are its stream chunks: words of the text, or slices of a tool call's arguments."""

    pieces: tuple[str, ...]
    finish: Finish
    stop_sequence: str | None = None
    tool_call: ToolCall | None = None

    @property
    def text(self) -> str:
        return "" if self.tool_call else "".join(self.pieces)

    @property
    def tokens(self) -> int:
        return len(self.pieces)


@dataclass(frozen=True, slots=True)
class Answer:
    choices: tuple[Choice, ...]
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        return sum(c.tokens for c in self.choices)

    @property
    def steps(self) -> int:
        """Stream steps: the longest choice's number of chunks (choices advance together)."""
        return max((c.tokens for c in self.choices), default=0)


def prompt_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def split_pieces(text: str) -> tuple[str, ...]:
    """`text` cut into word chunks whose concatenation is exactly `text`."""
    pieces = tuple(_PIECE.findall(text))
    return pieces if pieces or not text else (text,)


def words(seed_text: str, count: int, choice: int = 0) -> list[str]:
    """`count` words from the vocabulary, the same for the same seed text and choice index."""
    digest = hashlib.blake2b(f"{choice}\0{seed_text}".encode(), digest_size=8).digest()
    rng = random.Random(int.from_bytes(digest, "big"))  # noqa: S311 - deterministic text, not security
    return [rng.choice(VOCABULARY) for _ in range(count)]


def _sample(schema: Any) -> Any:
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(schema, dict) and isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    samples: dict[Any, Any] = {"string": "Paris", "number": 1.5, "integer": 1, "boolean": True, "array": []}
    if kind == "object":
        return _arguments(schema)
    return samples.get(kind)


def _arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Sample values for the schema's required properties ("Paris" for strings: weather tools want one)."""
    properties = schema.get("properties")
    required = schema.get("required")
    if not isinstance(properties, dict) or not isinstance(required, list):
        return {}
    return {name: _sample(properties.get(name)) for name in required if isinstance(name, str)}


def _tool_choice(tool: ToolSpec) -> Choice:
    arguments = orjson.dumps(_arguments(tool.schema)).decode()
    pieces = tuple(arguments[i : i + 8] for i in range(0, len(arguments), 8))
    call = ToolCall(id=uuid.uuid4().hex[:24], name=tool.name, arguments=arguments)
    return Choice(pieces=pieces, finish="tool_calls", tool_call=call)


def _text_choice(request: SimRequest, profile: Profile, index: int) -> Choice:
    limit = profile.output_tokens
    finish: Finish = "stop"
    if request.max_tokens is not None and request.max_tokens < limit:
        limit, finish = request.max_tokens, "length"
    text = " ".join(words(request.last_user, limit, index))
    hits = [(text.find(s), s) for s in request.stops if s in text]
    if hits:
        at, matched = min(hits)
        return Choice(pieces=split_pieces(text[:at]), finish="stop", stop_sequence=matched)
    return Choice(pieces=split_pieces(text), finish=finish)


def answer(request: SimRequest, profile: Profile) -> Answer:
    """The whole answer to `request` (all `n` choices).

    sim/echo answers with the raw request body, decoded as UTF-8, ignoring max_tokens, stops and tools.
    """
    if request.model == ECHO:
        echo = Choice(pieces=split_pieces(request.raw.decode("utf-8", errors="replace")), finish="stop")
        choices: tuple[Choice, ...] = (echo,) * request.n
    elif request.tool is not None:
        choices = tuple(_tool_choice(request.tool) for _ in range(request.n))
    else:
        choices = tuple(_text_choice(request, profile, i) for i in range(request.n))
    return Answer(choices=choices, prompt_tokens=prompt_tokens(request.prompt_text))
