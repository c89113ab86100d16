"""Finding personal data and secrets in prompt text: focused detectors with checksums, stdlib only.

Categories: `email`, `phone` (international and North American formats, 8 to 15 digits), `card` (13 to 19
digits, Luhn-checked), `iban` (ISO 13616 mod-97 checked), `ssn` (US, with the SSA's impossible ranges
excluded), `ip` (IPv4 and IPv6, parsed by `ipaddress`), `secret` (private-key blocks and the shapes of common
API keys and tokens: OpenAI, Anthropic, AWS, GitHub, Slack, Stripe, Google, JWTs, our own `gate_` keys).

Why our own module (../shared/STACK-NOTES.md §7): presidio without an NLP model is 393 MB, ~5 ms per prompt
and has false positives (SSNs and IPs also as phone numbers); scrubadub is unmaintained and missed most
categories; these detectors take tens of microseconds per prompt and caught all of them. Checksums keep
false positives down: a random 16-digit number is a card only if its Luhn digit is right, an IBAN-shaped
string only if mod 97 gives 1. Names and postal addresses need NER (a model we cannot install offline): not
detected.

Matches never overlap: detectors run in priority order (secrets, then e-mail, IBAN, card, SSN, IP, phone)
and a span taken by one is not offered to the next, so a card number is never also a phone number.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

CATEGORIES: Final = ("secret", "email", "iban", "card", "ssn", "ip", "phone")


@dataclass(frozen=True, slots=True)
class Finding:
    category: str
    start: int
    end: int
    value: str


# Secret shapes, each run only when its literal prefix occurs in the text (a substring test is far cheaper
# than a regex scan of every position).
_SECRETS: Final = (
    (
        "PRIVATE KEY-----",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    ),
    ("sk-", re.compile(r"\bsk-(?:proj-|ant-(?:api\d\d-)?|svcacct-)?[A-Za-z0-9_-]{20,}")),
    ("AKIA", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("ASIA", re.compile(r"\bASIA[0-9A-Z]{16}\b")),
    ("gh", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("github_pat_", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b")),
    ("xox", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("k_live_", re.compile(r"\b[rs]k_live_[A-Za-z0-9]{16,}\b")),
    ("k_test_", re.compile(r"\b[rs]k_test_[A-Za-z0-9]{16,}\b")),
    ("AIza", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("eyJ", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("gate_", re.compile(r"\bgate_[A-Za-z0-9]{12}_[A-Za-z0-9]{40}\b")),
)
# Runs of digits with the separators numbers are written with: the only places cards, SSNs, IPv4 addresses
# and phone numbers can be, so those detectors scan these few spans rather than the whole text.
_NUMERIC = re.compile(r"\+?\(?\d[\d ().:/-]*\d\)?")
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_PHONE = re.compile(
    r"(?<![\w+])(?<!\d[-./])(?:\+\d{7,14}(?!\w)"  # +4930123456; not the middle of 978-0-306-40615-7
    # +1 (415) 555-2671
    r"|(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,4}(?!\w)(?![-./]\d))"
)
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn(digits)


def _iban(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _phone(text: str) -> bool:
    digits = sum(map(str.isdigit, text))
    if not 8 <= digits <= 15 or _DATE.fullmatch(text) or _SSN_SHAPE.fullmatch(text):
        return False
    # A bare run of digits is a number, not a phone, unless it is written as an international one.
    return text.startswith("+") or any(char in text for char in " .-()")


Detector = tuple[str, re.Pattern[str], Callable[[str], bool] | None]
_NUMERIC_DETECTORS: Final[tuple[Detector, ...]] = (
    ("card", _CARD, _card),
    ("ssn", _SSN, None),
    ("ip", _IPV4, _ip),
    ("phone", _PHONE, _phone),
)


def pii_find(text: str, categories: frozenset[str] | None = None) -> list[Finding]:
    """Every finding in `text` (of the given categories, default all), in text order, never overlapping."""
    wanted = frozenset(CATEGORIES) if categories is None else categories
    found: list[Finding] = []
    if "secret" in wanted:
        for prefix, pattern in _SECRETS:
            if prefix in text:
                _collect(found, "secret", pattern, None, text, 0, len(text))
    if "email" in wanted and "@" in text:
        _collect(found, "email", _EMAIL, None, text, 0, len(text))
    if "iban" in wanted:
        _collect(found, "iban", _IBAN, _iban, text, 0, len(text))
    early = list(found)  # few: secrets, e-mails, IBANs; numeric findings are checked per span
    for start, end in (m.span() for m in _NUMERIC.finditer(text)):
        local = [f for f in early if f.start < end and start < f.end]
        for category, pattern, check in _NUMERIC_DETECTORS:
            if category in wanted:
                before = len(local)
                _collect(local, category, pattern, check, text, start, end)
                found.extend(local[before:])
    if "ip" in wanted and text.count(":") >= 2:
        _collect(found, "ip", _IPV6, _ip, text, 0, len(text))
    return sorted(found, key=lambda f: f.start)


def _collect(
    found: list[Finding],
    category: str,
    pattern: re.Pattern[str],
    check: Callable[[str], bool] | None,
    text: str,
    start: int,
    end: int,
) -> None:
    for match in pattern.finditer(text, start, end):
        begin, finish = match.span()
        if any(begin < f.end and f.start < finish for f in found):
            continue
        value = match.group()
        if check is None or check(value):
            found.append(Finding(category, begin, finish, value))
