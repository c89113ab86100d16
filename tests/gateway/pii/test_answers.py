"""The answer scanner: values removed from answers, also when a stream cuts them between chunks."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.pii.answers import AnswerScanner

CATEGORIES = frozenset({"email", "card", "phone", "iban", "secret"})


def streamed(pieces: list[str]) -> tuple[list[str], AnswerScanner]:
    scanner = AnswerScanner(CATEGORIES)
    out = []
    for piece in pieces:
        chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        out.append(scanner.chunk(chunk)["choices"][0]["delta"]["content"])
    end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    out.append(scanner.chunk(end)["choices"][0]["delta"].get("content") or "")
    return out, scanner


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["Card 4111 11", "11 1111 1", "111 ok"], "Card [CARD_REDACTED] ok"),
        (["mail jane", "@exam", "ple.com now"], "mail [EMAIL_REDACTED] now"),
        (["call +44 20 79", "46 0958 today"], "call [PHONE_REDACTED] today"),
        (["IBAN GB82 WEST 1234", " 5698 7654 32 thanks"], "IBAN [IBAN_REDACTED] thanks"),
        (["key sk-proj-", "Q" * 30, " end"], "key [SECRET_REDACTED] end"),
        (["-----BEGIN PRIVATE KEY-----\nMIIE", "vQIBADANBg\n-----END PRIVATE KEY-----\nok"], None),
        (
            ["version 1.2", ".3 of the ISBN 978-0-", "306-40615-7 book"],
            "version 1.2.3 of the ISBN 978-0-306-40615-7 book",
        ),
    ],
)
def test_a_value_cut_between_chunks_is_still_removed(pieces: list[str], expected: str | None) -> None:
    out, _ = streamed(pieces)
    text = "".join(out)
    if expected is None:
        assert "MIIE" not in text
        assert text.endswith("ok")
    else:
        assert text == expected


def test_ordinary_text_is_not_held_back() -> None:
    out, scanner = streamed(["The sky ", "is blue. ", "Bye"])
    assert out[:2] == ["The sky ", "is blue. "]
    assert "".join(out) == "The sky is blue. Bye"
    assert not scanner.counts


def test_a_completion_is_scanned_and_counted() -> None:
    scanner = AnswerScanner(frozenset({"email"}))
    body: dict[str, Any] = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "a@b.co and c@d.co"}}]
    }

    scanned = scanner.completion(body)

    assert scanned["choices"][0]["message"]["content"] == "[EMAIL_REDACTED] and [EMAIL_REDACTED]"
    assert scanner.counts == {"email": 2}
    assert body["choices"][0]["message"]["content"] == "a@b.co and c@d.co"  # the original is untouched
