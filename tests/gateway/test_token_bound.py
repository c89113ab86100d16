"""The prompt-token bound (gateway.tokens.bound) against the real counters, on hostile text: tiktoken's exact
count encoding the whole text (what OpenAI bills), the simulator's own parsing and counting code on both wire
formats, and real byte-level BPEs (o200k_base, cl100k_base) under the byte rule. Seeded random generation, so
a failure reproduces."""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest

from gateway.providers.anthropic_translate import request_to_anthropic
from gateway.routing import ModelInfo
from gateway.simulator.answers import prompt_tokens as simulator_prompt_tokens
from gateway.simulator.parsing import parse_anthropic, parse_openai
from gateway.tokens import PromptBounds, _encodings, bound, prompt_token_bound

CODE = 'def f(x):\n    return {"a": [x, x ** 2]}  # ok\n\tif x != 0: raise ValueError("=")\n'
SCRIPTS = [  # code point ranges, one per script, to mix
    (0x20, 0x7E),  # ASCII
    (0xA0, 0x24F),  # Latin-1 and Latin Extended
    (0x400, 0x4FF),  # Cyrillic
    (0x600, 0x6FF),  # Arabic
    (0x900, 0x97F),  # Devanagari
    (0x3040, 0x30FF),  # kana
    (0x4E00, 0x9FFF),  # CJK ideographs
    (0xAC00, 0xD7A3),  # Hangul
    (0x1F300, 0x1FAFF),  # emoji
    (0x2000, 0x206F),  # general punctuation, odd spaces
]


def _random_unicode(rng: random.Random, length: int) -> str:
    chars: list[str] = []
    while len(chars) < length:
        code = rng.randrange(0x20, 0x30000)
        if not 0xD800 <= code <= 0xDFFF:  # JSON bodies cannot carry lone surrogates
            chars.append(chr(code))
    return "".join(chars)


def _mixed_scripts(rng: random.Random, length: int) -> str:
    pieces: list[str] = []
    while sum(len(piece) for piece in pieces) < length:
        low, high = rng.choice(SCRIPTS)
        pieces.append("".join(chr(rng.randint(low, high)) for _ in range(rng.randint(1, 12))))
        pieces.append(rng.choice(["", " ", "  ", "\n", "\t", ".", "=="]))
    return "".join(pieces)


def hostile_texts(seed: int = 20_260_101, count: int = 150) -> list[str]:
    """Texts a tokenizer handles badly or a byte-per-token rule might miss, some longer than one chunk."""
    rng = random.Random(seed)
    texts = [
        "",
        " " * 40_000,
        "=" * 40_000,
        "a" * 40_000,
        "\n" * 20_000,
        "0" * 30_000,
        "🙂" * 8_000,
        "👍🏽" * 3_000,
        "東京で寿司を食べました" * 3_000,
        "the quick brown fox " * 3_000,
        CODE * 400,
        "<|endoftext|><|im_start|>" * 500,
        "a b" * 12_000,
        " =" * 20_000,
    ]
    makers: list[Callable[[int], str]] = [
        lambda n: rng.choice(" =a-_.\n\t0🙂東") * n,  # long runs of one character
        lambda n: _random_unicode(rng, n // 8),
        lambda n: _mixed_scripts(rng, n // 4),
        lambda n: " ".join(
            rng.choice(["word", "WORD", "Wörd", "字", "🙂", "1234", "=="]) for _ in range(n // 5)
        ),
        lambda n: CODE * (n // len(CODE) + 1),
        # Random strings over a tiny alphabet: no safe cut point, and merges that a hard cut splits.
        lambda n: "".join(rng.choices(rng.choice(["ab", "\u3000東", " =", "🙂a", "aA1"]), k=n)),
    ]
    texts.extend(rng.choice(makers)(rng.randint(1, 50_000)) for _ in range(count))
    return texts


HOSTILE = hostile_texts()


def model(name: str, provider: str, upstream: str = "", *, window: int = 0) -> ModelInfo:
    return ModelInfo(
        name=name,
        provider=provider,
        endpoint=provider,
        upstream_model=upstream or name,
        input_price_per_mtok=Decimal(1),
        output_price_per_mtok=Decimal(4),
        context_window=window,
        max_output_tokens=4096,
        supports_vision=True,
        supports_tools=True,
        supports_n=True,
    )


GPT_4O = model("gpt-4o", "openai")
GPT_4 = model("gpt-4", "openai")
SIM = model("sim/smart", "simulator")
SIM_ANTHROPIC = model("sim-anthropic/fast", "anthropic", "sim/fast")
CLAUDE = model("anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5")
OPEN_MODEL = model("llama", "openai_compatible", "meta-llama/Llama-3.1-8B-Instruct")


def _user(text: str) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


def test_openai_models_are_bounded_by_the_exact_count_of_the_whole_text() -> None:
    for text in HOSTILE:
        for info in (GPT_4O, GPT_4):
            encoding = _encodings.get_encoding(bound.tokenizer_of(info).encoding)
            exact = len(encoding.encode_ordinary(text)) + 3 + 1 + 3  # the cookbook: message, role, priming
            cuts = len(text) // (_encodings.CHUNK_CHARS - 2_048) + 1
            margin = 32 + 1 + _encodings.CUT_MARGIN_TOKENS * cuts
            assert exact <= prompt_token_bound(_user(text), info) <= exact + margin, (info.name, text[:40])


def test_a_chunked_count_plus_its_cut_margin_bounds_the_whole_text_count() -> None:
    for name in _encodings.RANK_FILES:
        encoding = _encodings.get_encoding(name)
        for text in HOSTILE:
            whole = len(encoding.encode_ordinary(text))
            assert whole <= _encodings.count_tokens_at_most(encoding, text) <= _encodings.utf8_size(text)


def test_a_conversation_is_bounded_by_the_cookbook_count() -> None:
    rng = random.Random(7)
    encoding = _encodings.get_encoding("o200k_base")
    for _ in range(30):
        messages, exact = [], 3
        for _ in range(rng.randint(1, 8)):
            text = rng.choice(HOSTILE)[: rng.randint(0, 5_000)]
            message = {"role": rng.choice(["system", "user", "assistant"]), "content": text}
            exact += 3 + len(encoding.encode_ordinary(message["role"])) + len(encoding.encode_ordinary(text))
            if rng.random() < 0.3:
                message["name"] = rng.choice(["alice", "Bob_2", "東京"])
                exact += 1 + len(encoding.encode_ordinary(message["name"]))
            messages.append(message)
        assert prompt_token_bound({"messages": messages}, GPT_4O) >= exact


def _random_conversation(rng: random.Random) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 6)):
        role = rng.choice(["system", "developer", "user", "assistant"])
        text = rng.choice(HOSTILE)[: rng.randint(1, 8_000)] or "x"
        if rng.random() < 0.5:
            cut = rng.randint(0, len(text))
            parts = [{"type": "text", "text": piece} for piece in (text[:cut], text[cut:]) if piece]
            messages.append({"role": role, "content": parts or text})
        else:
            messages.append({"role": role, "content": text})
    if messages[-1]["role"] != "user":
        messages.append({"role": "user", "content": rng.choice(HOSTILE)[:1_000] or "?"})
    return messages


def test_the_simulator_is_bounded_by_its_own_count_on_both_wire_formats() -> None:
    rng = random.Random(11)
    for text in HOSTILE:
        body = _user(text or "?")
        counted = simulator_prompt_tokens(parse_openai(orjson.dumps(body)).prompt_text)
        assert counted <= prompt_token_bound(body, SIM) <= counted + 1
    for _ in range(40):
        body = {"model": "sim/fast", "messages": _random_conversation(rng), "max_tokens": 5}
        openai_wire = parse_openai(orjson.dumps(body)).prompt_text
        anthropic_wire = parse_anthropic(orjson.dumps(request_to_anthropic(body, "sim/fast", stream=False)))
        assert prompt_token_bound(body, SIM) >= simulator_prompt_tokens(openai_wire)
        assert prompt_token_bound(body, SIM_ANTHROPIC) >= simulator_prompt_tokens(anthropic_wire.prompt_text)


def test_no_byte_level_bpe_counts_more_tokens_than_bytes() -> None:
    encodings = [_encodings.get_encoding(name) for name in _encodings.RANK_FILES]
    for text in HOSTILE:
        size = _encodings.utf8_size(text)
        assert all(len(encoding.encode_ordinary(text)) <= size for encoding in encodings)
        assert prompt_token_bound(_user(text), CLAUDE) >= size + 64 + 8
        assert prompt_token_bound(_user(text), OPEN_MODEL) >= size + 128 + 16


def test_the_text_is_counted_once_per_tokenizer_not_once_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    count = _encodings.count_tokens_at_most

    def counting(encoding: Any, text: str) -> int:
        calls.append(encoding.name)
        return count(encoding, text)

    monkeypatch.setattr(_encodings, "count_tokens_at_most", counting)
    bounds = PromptBounds({"messages": [{"role": "user", "content": "hello"}]})
    chain = [GPT_4O, model("gpt-4o-mini", "openai"), model("o3", "openai"), GPT_4, CLAUDE, SIM, OPEN_MODEL]
    for info in chain * 3:
        bounds.prompt(info)
    assert sorted(calls) == ["cl100k_base"] * 2 + ["o200k_base"] * 2  # role and content, per encoding


def test_without_tokenizer_data_openai_models_are_bounded_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise _encodings.TokenizerDataError(name)

    monkeypatch.setattr(_encodings, "get_encoding", missing)
    assert prompt_token_bound(_user("=" * 1000), GPT_4O) == 3 + 32 + 4 + len("user") + 1000


def test_which_rule_bounds_which_model() -> None:
    kinds = {info.name: bound.tokenizer_of(info) for info in (GPT_4O, GPT_4, SIM, SIM_ANTHROPIC, CLAUDE)}
    assert kinds["gpt-4o"] == (bound.Kind.OPENAI, "o200k_base", "gpt-4o")
    assert kinds["gpt-4"].encoding == "cl100k_base"
    assert kinds["sim/smart"].kind is bound.Kind.SIMULATOR
    assert kinds["sim-anthropic/fast"].kind is bound.Kind.SIMULATOR  # the simulator counts, whatever the wire
    assert kinds["anthropic/claude-sonnet-4-5"].kind is bound.Kind.ANTHROPIC
    assert bound.tokenizer_of(model("my-4o", "openai_compatible", "gpt-4o")).kind is bound.Kind.OTHER
    assert bound.tokenizer_of(model("davinci", "openai", "text-davinci-003")).kind is bound.Kind.OTHER
