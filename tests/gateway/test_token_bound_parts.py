"""The prompt-token bound (gateway.tokens.bound) beyond plain text: images, audio, files, tools and other
structure, what only the context window bounds, and odd bodies."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from gateway.tokens import PromptBounds, prompt_token_bound
from tests.gateway.test_token_bound import CLAUDE, GPT_4O, OPEN_MODEL, SIM, model
from tests.gateway.test_tokens import ODD_BODIES, _jpeg, _png

AUDIO = base64.b64encode(bytes(800_000)).decode()  # 800 kB of audio, about 50 s of 128 kbit/s MP3
PDF = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.7" + bytes(20_000)).decode()
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.\nUse it for any question about the weather.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


def _with(*parts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    content = [{"type": "text", "text": "What is this?"}, *parts]
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


def _extra(part: dict[str, Any], info: Any) -> int:
    """The tokens ``part`` adds to the bound of a one-question body, on ``info``."""
    return prompt_token_bound(_with(part), info) - prompt_token_bound(_with(), info)


def _image(url: str, detail: str | None = None) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, **({"detail": detail} if detail else {})}}


def test_a_large_audio_part_reserves_by_its_size() -> None:
    part = {"type": "input_audio", "input_audio": {"data": AUDIO, "format": "mp3"}}
    decoded = 800_001  # 800,000 bytes, and the base64 padding counted up
    assert _extra(part, GPT_4O) == 8 + 1 + -(-decoded // 50)  # wrapper, part, 1 token per 50 bytes
    assert _extra(part, CLAUDE) == 8 + 4 + -(-decoded // 16)
    assert _extra(part, model("o", "openai_compatible", "qwen", window=10**6)) == 8 + 4 + -(-decoded // 16)
    assert _extra(part, SIM) == 0  # the simulator counts message text only


def test_a_file_part_reserves_a_token_per_byte() -> None:
    part = {"type": "file", "file": {"filename": "a.pdf", "file_data": PDF}}
    assert _extra(part, GPT_4O) == 8 + 1 + len(b"%PDF-1.7") + 20_000 + 2  # base64 padding counted up
    assert _extra(part, CLAUDE) > 20_000


@pytest.mark.parametrize(
    "body",
    [
        _with({"type": "file", "file": {"file_id": "file-abc"}}),
        _with({"type": "input_audio", "input_audio": {"format": "wav"}}),
        {
            "messages": [
                {"role": "assistant", "audio": {"id": "audio_1"}},
                {"role": "user", "content": "more"},
            ]
        },
        _with(web_search_options={}),
    ],
    ids=["file-id", "audio-without-data", "audio-reference", "web-search"],
)
def test_what_has_no_known_size_reserves_the_context_window(body: dict[str, Any]) -> None:
    assert prompt_token_bound(body, model("gpt-4o", "openai", window=128_000)) == 128_000
    assert prompt_token_bound(body, model("gpt-4o", "openai")) == 2_000_000  # no window in the catalogue


def test_openai_images_are_bounded_by_their_rule_and_size() -> None:
    def image(url: str, name: str = "gpt-4o", detail: str | None = None) -> int:
        return _extra(_image(url, detail), model(name, "openai")) - 8 - 1

    remote = "https://example.com/cat.png"
    assert image(_jpeg(2048, 4096)) == 1105  # the vision guide's example: 768x1536, 6 tiles
    assert image(_png(4096, 8192), detail="low") == 85
    assert image(remote) == 85 + 8 * 170  # unknown size: at most 2048x768 after scaling, 8 tiles
    assert image(remote, detail="low") == 85
    assert image(remote, "gpt-4o-mini-2024-07-18") == 2833 + 8 * 5667
    assert image(remote, "gpt-4.1-mini") == 2489  # 1536 patches x 1.62, rounded up
    assert image(_png(320, 320), "gpt-4.1-mini", detail="low") == 162  # 100 patches: detail does not lower it
    assert image(remote, "o4-mini") == 2642
    assert image(remote, "gpt-4.1") == 1536  # patches (documented) or tiles (billed): the larger
    assert image(remote, "gpt-5.2") == 3779  # not in the tables: the largest rule, 1536 x 2.46


def test_anthropic_images_are_bounded_by_their_pixels_up_to_the_largest_native_size() -> None:
    def image(url: str) -> int:
        return _extra(_image(url), CLAUDE) - 8 - 4

    assert image(_png(1000, 1000)) == 1355  # 1008 x 1008 (padded to 28 px) / 750, rounded up
    assert image(_png(8000, 8000)) == 5000
    assert image("https://example.com/cat.png") == 5000


def test_an_image_on_a_model_with_no_published_rule_reserves_the_context_window() -> None:
    assert prompt_token_bound(_with(_image(_png(10, 10))), model("o", "other", "x", window=32_000)) == 32_000


def test_tools_and_structure_count_twice_their_json_bytes() -> None:
    plain = {"model": "m", "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    tools = {**plain, "tools": [WEATHER, WEATHER]}
    size = len(orjson.dumps(WEATHER))
    assert prompt_token_bound(tools, GPT_4O) - prompt_token_bound(plain, GPT_4O) == 32 + 2 * (16 + 2 * size)
    assert prompt_token_bound(tools, CLAUDE) - prompt_token_bound(plain, CLAUDE) == 530 + 2 * (16 + 2 * size)
    assert prompt_token_bound(tools, OPEN_MODEL) - prompt_token_bound(plain, OPEN_MODEL) == 1024 + 2 * (
        16 + 2 * size
    )
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":1}'},
    }
    answered = {
        **plain,
        "messages": [
            *plain["messages"],
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "12 C"},
        ],
    }
    assert prompt_token_bound(answered, GPT_4O) >= prompt_token_bound(plain, GPT_4O) + 2 * len(
        orjson.dumps(call)
    )


def test_the_context_window_caps_the_bound_but_not_the_simulators() -> None:
    body = {"messages": [{"role": "user", "content": "a " * 500_000}]}  # 500,000 tokens
    assert prompt_token_bound(body, model("gpt-4o", "openai", window=128_000)) == 128_000
    assert prompt_token_bound(body, model("sim/fast", "simulator", window=16_000)) == 250_001


def test_a_predicted_output_is_bounded_by_its_bytes() -> None:
    from gateway.tokens import prediction_token_bound

    assert prediction_token_bound({"prediction": {"type": "content", "content": "東京 ok"}}) == 9
    assert prediction_token_bound({"prediction": {"content": [{"type": "text", "text": "x"}]}}) > 1
    assert prediction_token_bound({"prediction": "odd"}) == 0


@pytest.mark.parametrize("body", ODD_BODIES)
def test_odd_input_never_raises(body: object) -> None:
    bounds = PromptBounds(body)  # type: ignore[arg-type]
    for info in (GPT_4O, CLAUDE, SIM, OPEN_MODEL, model("w", "openai", window=50_000)):
        count = bounds.prompt(info)
        assert isinstance(count, int)
        assert count >= 1
