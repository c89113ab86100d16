"""An upper bound of the prompt tokens a provider can bill for a chat-completions body: what budgets reserve.

An estimate (``estimate_prompt_tokens``) may be low; this may not. Which rule applies depends on who counts,
the model's provider and upstream name (:func:`tokenizer_of`):

- **OpenAI models** (provider "openai", a name tiktoken maps to o200k_base or cl100k_base): message text is
  counted exactly, as gateway.tokens counts it (a text longer than 16k characters is counted in chunks, plus
  4 tokens per cut, and never more than its UTF-8 bytes), with the cookbook's chat-format overheads (3 per
  message, 1 per name, 3 to prime the reply) and margins for what we cannot reproduce exactly: 32 per
  request, 1 per message, 1 per content part, 8 per image, audio or file part.
- **The simulator** (provider "simulator", or an upstream name "sim/..."): its documented rule, the
  characters of all message text / 4, rounded up, counting 2 separator characters per message and 1 per
  content part. The simulator counts nothing else (images, tools) and does not enforce its context
  window, so this bound is not capped by it.
- **Every other model** (Anthropic, OpenAI-compatible servers, OpenAI models tiktoken does not know): from
  bytes. A byte-level BPE token (or a SentencePiece piece) covers at least one UTF-8 byte, so the tokens of
  a text are at most its bytes. Overheads with no published rule are generous: Anthropic 64 per request,
  8 per message, 4 per part; others 128, 16, 4 (chat templates of open models add a default system prompt
  of a few dozen tokens and a few tokens per turn).

The same for every rule but the simulator's:

- **Structure** the provider renders in its own format (tool and function definitions, a response_format,
  a tool_choice naming a function, tool calls in messages, fields we do not know): 2 tokens per byte of
  their compact JSON, plus 16 per item, plus the tool preamble once when tools are present (OpenAI 32;
  Anthropic 530, the largest "tool use system prompt" in its pricing table; others 1024). No construct we
  know of OpenAI's TypeScript-like rendering of JSON Schema, or of re-serialised arguments, adds more than
  one byte of syntax per byte of JSON (the worst we found, an escaped newline in a description, 2 bytes,
  becomes a new "// " comment line, 4 bytes), and a token covers at least one byte.
- **Images**: the provider's rule, exact when the size is in the image header, else the most an image can
  cost on that model (see ``_images``). Models with no published rule: unknown, as below.
- **Audio** (``input_audio``): its decoded size at 1 token per 50 bytes for OpenAI (it bills user audio
  at 1 token per 100 ms; MP3, the most compact format it takes, is at least 8 kbit/s = 1000 bytes/s:
  10 tokens/s, doubled), 1 per 16 bytes for others (Gemini documents 32 tokens/s: 1000 bytes/s
  doubled).
- **Files** (``file`` with ``file_data``): 1 token per decoded byte (text extracted from a file is
  at most as long as the file unless the file compresses it; see docs/LIMITS.md for what remains).
- **Unknown size** (a ``file_id``, an assistant ``audio`` reference, ``web_search_options`` whose results
  the provider adds to the prompt, an image on a model with no rule): the model's context window.
- **The context window caps the whole** (when the catalogue knows it, else 2,000,000, the largest window
  offered today): a provider refuses a longer prompt rather than bill it.

The body is walked once and its text counted once per tokenizer (o200k_base, cl100k_base, bytes), however
many models are asked about (:class:`PromptBounds`). Linear in the body's size, no I/O, never raises.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import orjson

from gateway.tokens import _chat, _encodings, _images

if TYPE_CHECKING:
    from gateway.routing import ModelInfo

__all__ = ["PromptBounds", "Tokenizer", "prediction_token_bound", "prompt_token_bound", "tokenizer_of"]

NO_WINDOW_TOKENS: Final = 2_000_000
STRUCTURE_TOKENS_PER_BYTE: Final = 2
STRUCTURE_ITEM_TOKENS: Final = 16
MEDIA_PART_TOKENS: Final = 8
OPENAI_AUDIO_BYTES_PER_TOKEN: Final = 50
OTHER_AUDIO_BYTES_PER_TOKEN: Final = 16
FILE_TOKENS_PER_BYTE: Final = 1
SIMULATOR_CHARS_PER_TOKEN: Final = 4

_TEXT_KEYS: Final = frozenset({"type", "text"})
_REFUSAL_KEYS: Final = frozenset({"type", "refusal"})


class Kind(enum.Enum):
    OPENAI = "openai"  # tiktoken, exact
    SIMULATOR = "simulator"  # ceil(characters / 4)
    ANTHROPIC = "anthropic"  # bytes
    OTHER = "other"  # bytes


class Tokenizer(NamedTuple):
    kind: Kind
    encoding: str  # the tiktoken encoding for OPENAI, else ""
    name: str  # the upstream model name, normalised (for the image rules)


class _Overheads(NamedTuple):
    request: int
    message: int
    name: int
    part: int
    tools: int  # once, when the request defines tools or functions


_OVERHEADS: Final = {
    Kind.OPENAI: _Overheads(
        request=_chat.REPLY_PRIMING_TOKENS + 32,
        message=_chat.TOKENS_PER_MESSAGE + 1,
        name=_chat.TOKENS_PER_NAME,
        part=1,
        tools=32,
    ),
    Kind.ANTHROPIC: _Overheads(request=64, message=8, name=0, part=4, tools=530),
    Kind.OTHER: _Overheads(request=128, message=16, name=0, part=4, tools=1024),
}


def tokenizer_of(model: ModelInfo) -> Tokenizer:
    """Who counts ``model``'s prompt tokens, and so which rule bounds them (see the module docstring)."""
    name = _encodings.model_name(model.upstream_model or model.name)
    if model.provider == "simulator" or name.startswith("sim/"):
        return Tokenizer(Kind.SIMULATOR, "", name)
    if model.provider == "openai":
        encoding = _encodings.exact_encoding(name)
        if encoding is not None:
            return Tokenizer(Kind.OPENAI, encoding, name)
    if model.provider == "anthropic":
        return Tokenizer(Kind.ANTHROPIC, "", name)
    return Tokenizer(Kind.OTHER, "", name)


def prompt_token_bound(body: Mapping[str, Any], model: ModelInfo) -> int:
    """At most the prompt tokens the provider serving ``model`` can bill for the chat-completions ``body``.

    See the module docstring for the rules. Never raises; for several models of one body, use PromptBounds.
    """
    return PromptBounds(body).prompt(model)


def prediction_token_bound(body: Mapping[str, Any]) -> int:
    """At most the tokens of a predicted output (``prediction``), which OpenAI bills as completion tokens
    when the answer rejects them: its UTF-8 bytes."""
    prediction = body.get("prediction")
    if not isinstance(prediction, dict):
        return 0
    content = prediction.get("content")
    if isinstance(content, str):
        return _encodings.utf8_size(content)
    if isinstance(content, list):
        return sum(_json_size(part) for part in content)
    return 0


@dataclass(slots=True)
class _Shape:
    """What a body holds, measured once whatever the tokenizer."""

    texts: list[str] = field(default_factory=list)  # rendered as text: roles, contents, names, ids
    structure_bytes: int = 0  # compact JSON bytes of what the provider renders in its own format
    structure_items: int = 0
    tools: bool = False
    messages: int = 0
    names: int = 0
    parts: int = 0
    images: list[tuple[object, object]] = field(default_factory=list)  # (url, detail)
    audio_bytes: int = 0
    audio_parts: int = 0
    file_bytes: int = 0
    file_parts: int = 0
    unknown_size: bool = False  # something only the context window bounds
    simulator_chars: int = 0


class PromptBounds:
    """Upper bounds of the prompt tokens of one chat-completions body, per model.

    The body is walked once, here; its text is counted on first need once per tokenizer (o200k_base,
    cl100k_base, bytes), so asking about every model of a fallback chain costs one count per tokenizer.
    """

    def __init__(self, body: Mapping[str, Any]) -> None:
        self._text_tokens: dict[str, int] = {}
        try:
            self._shape: _Shape | None = _walk(body)
        except Exception:  # a shape the walk did not foresee: fall back to the context window
            self._shape = None

    def prompt(self, model: ModelInfo) -> int:
        """At most the prompt tokens the provider serving ``model`` can bill for the body."""
        tokenizer = tokenizer_of(model)
        window = model.context_window if model.context_window > 0 else NO_WINDOW_TOKENS
        if tokenizer.kind is Kind.SIMULATOR:  # it enforces no window
            window = NO_WINDOW_TOKENS
        try:
            return self._prompt(tokenizer, window)
        except Exception:  # never expected; the window still bounds what the provider can bill
            return window

    def _prompt(self, tokenizer: Tokenizer, window: int) -> int:
        shape = self._shape
        if shape is None:
            return window
        if tokenizer.kind is Kind.SIMULATOR:
            return max(1, -(-shape.simulator_chars // SIMULATOR_CHARS_PER_TOKEN))
        if shape.unknown_size or (shape.images and tokenizer.kind is Kind.OTHER):
            return window
        overheads = _OVERHEADS[tokenizer.kind]
        total = (
            overheads.request
            + overheads.message * shape.messages
            + overheads.name * shape.names
            + overheads.part * shape.parts
            + self._texts(tokenizer.encoding or "bytes", shape.texts)
            + STRUCTURE_TOKENS_PER_BYTE * shape.structure_bytes
            + STRUCTURE_ITEM_TOKENS * shape.structure_items
            + (overheads.tools if shape.tools else 0)
            + MEDIA_PART_TOKENS * (len(shape.images) + shape.audio_parts + shape.file_parts)
            + _images_bound(tokenizer, shape.images)
            + _audio_bound(tokenizer, shape.audio_bytes)
            + FILE_TOKENS_PER_BYTE * shape.file_bytes
        )
        return min(total, window)

    def _texts(self, encoding: str, texts: list[str]) -> int:
        tokens = self._text_tokens.get(encoding)
        if tokens is None:
            tokens = self._text_tokens[encoding] = _count_texts(encoding, texts)
        return tokens


def _count_texts(encoding: str, texts: list[str]) -> int:
    if encoding != "bytes":
        try:
            bpe = _encodings.get_encoding(encoding)
        except _encodings.TokenizerDataError:  # no tokenizer data: bytes bound every byte-level BPE
            pass
        else:
            return sum(_encodings.count_tokens_at_most(bpe, text) for text in texts)
    return sum(_encodings.utf8_size(text) for text in texts)


def _images_bound(tokenizer: Tokenizer, images: list[tuple[object, object]]) -> int:
    total = 0
    for url, detail in images:
        size = _images.image_size(url)
        if tokenizer.kind is Kind.ANTHROPIC:
            total += _images.anthropic_image_bound(size)
        else:
            total += _images.openai_image_bound(tokenizer.name, detail, size)
    return total


def _audio_bound(tokenizer: Tokenizer, size: int) -> int:
    rate = OPENAI_AUDIO_BYTES_PER_TOKEN if tokenizer.kind is Kind.OPENAI else OTHER_AUDIO_BYTES_PER_TOKEN
    return -(-size // rate)


def _walk(body: Mapping[str, Any]) -> _Shape:
    shape = _Shape()
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ([] if messages is None else [messages]):
        _message(shape, message)
    for key in ("tools", "functions"):
        definitions = body.get(key)
        if definitions:
            shape.tools = True
            _structure(shape, definitions if isinstance(definitions, list) else [definitions])
    for key in ("response_format", "tool_choice"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            _structure(shape, [value])
    if body.get("web_search_options") is not None:  # search results join the prompt, of unknown size
        shape.unknown_size = True
    return shape


def _message(shape: _Shape, message: object) -> None:
    shape.messages += 1
    shape.simulator_chars += 2  # the simulator joins messages (and Anthropic system texts) with separators
    if not isinstance(message, dict):
        _structure(shape, [message])
        return
    for key, value in message.items():
        if key == "content":
            _content(shape, value)
        elif key == "audio":  # a reference to an earlier spoken answer, of unknown length
            shape.unknown_size = True
        elif isinstance(value, str):  # role, name, tool_call_id, ...
            shape.texts.append(value)
            if key == "name":
                shape.names += 1
        elif value is not None:  # tool_calls, function_call, fields we do not know
            _structure(shape, value if key == "tool_calls" and isinstance(value, list) else [value])


def _content(shape: _Shape, content: object) -> None:
    if isinstance(content, str):
        shape.texts.append(content)
        shape.simulator_chars += len(content)
        return
    if not isinstance(content, list):
        if content is not None:
            _structure(shape, [content])
        return
    for part in content:
        shape.parts += 1
        if not isinstance(part, dict):
            _structure(shape, [part])
            continue
        text = part.get("text")
        if isinstance(text, str):  # the simulator counts the text of any part that has one
            shape.simulator_chars += len(text) + 1
        _part(shape, part, text)


def _part(shape: _Shape, part: dict[Any, Any], text: object) -> None:
    kind = part.get("type")
    if kind == "text" and isinstance(text, str) and part.keys() <= _TEXT_KEYS:
        shape.texts.append(text)
    elif kind == "refusal" and isinstance(part.get("refusal"), str) and part.keys() <= _REFUSAL_KEYS:
        shape.texts.append(part["refusal"])
    elif kind == "image_url" or (kind is None and "image_url" in part):
        image = part.get("image_url")
        if isinstance(image, dict):
            shape.images.append((image.get("url"), image.get("detail")))
        else:
            shape.images.append((image, None))
    elif kind == "input_audio":
        audio = part.get("input_audio")
        data = audio.get("data") if isinstance(audio, dict) else None
        shape.audio_parts += 1
        if isinstance(data, str):
            shape.audio_bytes += _decoded_size(data)
        else:
            shape.unknown_size = True
    elif kind == "file":
        file = part.get("file")
        data = file.get("file_data") if isinstance(file, dict) else None
        shape.file_parts += 1
        if isinstance(data, str):
            shape.file_bytes += _decoded_size(data)
        else:  # a file_id: uploaded earlier, size unknown here
            shape.unknown_size = True
    else:  # a part we do not know, or a known one with extra fields: all of it, as structure
        _structure(shape, [part])


def _structure(shape: _Shape, items: Iterable[object]) -> None:
    for item in items:
        shape.structure_items += 1
        shape.structure_bytes += _json_size(item)


def _decoded_size(data: str) -> int:
    """At most the bytes a base64 payload (or a ``data:`` URL of one) decodes to."""
    comma = data.find(",", 0, 256) if data.startswith("data:") else -1
    return (len(data) - comma - 1) * 3 // 4


def _json_size(value: object) -> int:
    """The bytes of ``value``'s compact JSON; past orjson's nesting limit, an upper bound of them."""
    if isinstance(value, str):
        return _encodings.utf8_size(value) + 2
    try:
        return len(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))
    except Exception:  # nested deeper than orjson writes: sum the parts without recursion
        return _json_size_walk(value)


def _json_size_walk(value: object) -> int:
    total = 0
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            total += 2 + 2 * len(item)  # braces, and a colon and a comma per member
            for key, member in item.items():
                stack.append(key if isinstance(key, str) else str(key))
                stack.append(member)
        elif isinstance(item, list | tuple):
            total += 2 + len(item)
            stack.extend(item)
        elif isinstance(item, str):
            total += 6 * len(item) + 2  # \\uXXXX is the longest escape of one character
        else:
            total += 6 * len(_safe_str(item)) + 2
    return total


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a __str__ that fails or recurses
        return ""
