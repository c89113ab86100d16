"""The PII detectors: what each finds, and the look-alikes (failed checksums, dates, versions) it must not."""

from __future__ import annotations

import pytest

from gateway.pii.detect import pii_find
from gateway.pii.redact import Redactor


@pytest.mark.parametrize(
    ("category", "value"),
    [
        ("email", "jane.doe+news@example.co.uk"),
        ("phone", "+1 415 555 2671"),
        ("phone", "+44 20 7946 0958"),
        ("phone", "(415) 555-2671"),
        ("phone", "+4930123456"),
        ("phone", "030 1234 5678"),
        ("card", "4111 1111 1111 1111"),
        ("card", "5555-5555-5555-4444"),
        ("card", "378282246310005"),
        ("iban", "DE89 3704 0044 0532 0130 00"),
        ("iban", "GB82WEST12345698765432"),
        ("ssn", "078-05-1120"),
        ("ip", "192.168.10.254"),
        ("ip", "2001:db8:85a3::8a2e:370:7334"),
        ("secret", "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0kLmN"),
        ("secret", "sk-ant-api03-" + "x" * 40),
        ("secret", "AKIA" + "IOSFODNN7EXAMPLE"),
        ("secret", "ghp_" + "a" * 36),
        ("secret", "xoxb-1234567890-abcdefghij"),
        ("secret", "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"),
        ("secret", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXNpZ24"),
        ("secret", "gate_" + "A" * 12 + "_" + "b" * 40),
        ("secret", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----"),
    ],
)
def test_each_category_is_found_in_running_text(category: str, value: str) -> None:
    findings = pii_find(f"Please check this: {value}. Thanks!")

    assert [(f.category, f.value) for f in findings] == [(category, value)]


@pytest.mark.parametrize(
    "text",
    [
        "Card 4111 1111 1111 1112 fails its Luhn check",
        "IBAN DE89 3704 0044 0532 0130 01 fails mod 97",
        "SSN 000-12-3456 and 666-12-3456 and 900-12-3456 are impossible",
        "The release on 2024-01-15 (or 15.01.2024) fixed it",
        "Version 1.2.3 and 999.1.1.1 are not addresses",
        "Order 12345678 shipped; we have 42 of them",
        "The ratio 3:4 and time 10:30 are fine",
        "sk-short is not a key",
        "ISBN 978-0-306-40615-7 and ISBN-10 0-306-40615-2 are books",
        "ISBN 9780306406157 is the same book",
    ],
)
def test_look_alikes_are_not_findings(text: str) -> None:
    assert pii_find(text) == []


def test_a_card_number_is_not_also_a_phone_number() -> None:
    assert [f.category for f in pii_find("call +1 415 555 2671 or pay with 4111111111111111")] == [
        "phone",
        "card",
    ]


def test_redaction_is_consistent_within_a_request_and_restores_the_answer() -> None:
    redactor = Redactor(frozenset({"email", "card"}))

    first = redactor.redact("Mail jane@example.com about card 4111 1111 1111 1111.")
    second = redactor.redact("Did jane@example.com reply? Also bob@example.org. Call +1 415 555 2671.")

    assert first == "Mail [EMAIL_1] about card [CARD_1]."
    assert second == "Did [EMAIL_1] reply? Also [EMAIL_2]. Call +1 415 555 2671."  # phone: not redacted
    assert dict(redactor.counts) == {"email": 2, "card": 1}
    assert redactor.restore("I wrote to [EMAIL_1] and [EMAIL_2]; [EMAIL_9] is unknown.") == (
        "I wrote to jane@example.com and bob@example.org; [EMAIL_9] is unknown."
    )
