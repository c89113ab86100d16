"""Which requests the cache may answer, and which differences split its scope."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.cache.keys import ANSWER_FIELDS, cache_key

BASE: dict[str, Any] = {
    "model": "sim/fast",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ],
}
CHANGES: dict[str, object] = {
    "temperature": 0.2,
    "top_p": 0.5,
    "max_tokens": 10,
    "max_completion_tokens": 10,
    "stop": ["\n"],
    "seed": 7,
    "presence_penalty": 0.5,
    "frequency_penalty": 0.5,
    "logit_bias": {"50256": -100},
    "logprobs": True,
    "top_logprobs": 2,
    "response_format": {"type": "json_object"},
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    "tool_choice": "none",
    "parallel_tool_calls": False,
    "reasoning_effort": "low",
}


def key(body: dict[str, Any], scope_model: str = "sim/fast", cache_control: str | None = None) -> Any:
    return cache_key(body, scope_model=scope_model, max_temperature=1.0, cache_control=cache_control)


def test_the_same_request_has_the_same_keys_whatever_the_whitespace() -> None:
    spaced = {
        **BASE,
        "messages": [BASE["messages"][0], {"role": "user", "content": "  Capital  of\nFrance? "}],
    }
    assert key(BASE) == key(spaced)
    assert key(BASE).prompt == "Capital of France?"


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_each_parameter_that_changes_the_answer_splits_the_scope(name: str) -> None:
    assert name in ANSWER_FIELDS
    assert key({**BASE, name: CHANGES[name]}).scope_key != key(BASE).scope_key


@pytest.mark.parametrize(
    "change",
    [
        {"messages": [{"role": "system", "content": "Be verbose."}, BASE["messages"][1]]},
        {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                BASE["messages"][1],
            ]
        },
        {
            "messages": [
                BASE["messages"][0],
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Capital of France?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    ],
                },
            ]
        },
    ],
    ids=["system-prompt", "earlier-turns", "image"],
)
def test_the_conversation_before_the_last_turn_and_its_other_parts_split_the_scope(
    change: dict[str, Any],
) -> None:
    changed = key({**BASE, **change})
    assert changed.scope_key != key(BASE).scope_key
    assert changed.prompt == "Capital of France?"


def test_the_model_or_chain_splits_the_scope() -> None:
    assert key(BASE, scope_model="sim/smart").scope_key != key(BASE).scope_key


@pytest.mark.parametrize(
    "change",
    [
        {"stream": True},
        {"user": "u-1"},
        {"metadata": {"a": "b"}},
        {"stream_options": {"include_usage": True}},
    ],
)
def test_what_does_not_change_the_answer_does_not_split_it(change: dict[str, Any]) -> None:
    assert key({**BASE, **change}) == key(BASE)


@pytest.mark.parametrize(
    ("change", "cache_control"),
    [
        ({"n": 2}, None),
        ({"temperature": 1.5}, None),
        ({}, "no-store"),
        ({}, "max-age=0, No-Store"),
        ({"messages": [*BASE["messages"], {"role": "assistant", "content": "Paris"}]}, None),
        (
            {
                "messages": [
                    {"role": "user", "content": "Weather?"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                    {"role": "user", "content": "And tomorrow?"},
                ]
            },
            None,
        ),
        ({"messages": [{"role": "user", "content": "   "}]}, None),
    ],
    ids=["n>1", "hot", "no-store", "no-store-mixed-case", "last-not-user", "tool-results", "empty"],
)
def test_requests_the_cache_must_not_touch(change: dict[str, Any], cache_control: str | None) -> None:
    assert key({**BASE, **change}, cache_control=cache_control) is None


def test_no_cache_skips_the_lookup_but_keeps_the_keys() -> None:
    refreshed = key(BASE, cache_control="no-cache")
    assert refreshed is not None
    assert not refreshed.lookup
    assert (refreshed.exact_key, refreshed.scope_key) == (key(BASE).exact_key, key(BASE).scope_key)
