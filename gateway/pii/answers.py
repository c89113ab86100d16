"""Scanning the model's answers for personal data (a tenant's option, off by default).

With `PiiPolicy.scan_answers`, every category the tenant redacts or blocks in prompts is also removed from
answers, as `[EMAIL_REDACTED]` and the like: data the model produced (or repeated from its training), never
the tenant's own values put back by restoration, which happens after the scan. Those markers match no
placeholder, so restoration leaves them alone.

In a stream, the end of the text seen so far may be the start of a value finished by the next chunk (a
card number's first groups, half an e-mail address): that tail is held back, per choice, until the next
chunk or the end, at most HOLD_MAX characters (a private-key block up to KEY_BLOCK_MAX).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Final

from gateway.pii.apply import DeltaRewriter, messages_rewritten
from gateway.pii.detect import pii_find

HOLD_MAX: Final = 96
CONTEXT: Final = 48  # text already sent, scanned again before a new piece (detectors look at what precedes)
KEY_BLOCK_MAX: Final = 8192
# Where a value may still be growing: a run of digits and the separators of numbers (cards, phones, SSNs,
# IBAN groups), an IBAN's country and check digits, or the last unfinished word (e-mail, address, key).
_OPEN_TAIL: Final = re.compile(r"(?:[A-Z]{2}\d{2}[A-Z0-9 ]*|[+(]?\d[\d()\-. /]*|\S+)$")
_KEY_BEGIN: Final = "-----BEGIN"


class AnswerScanner(DeltaRewriter):
    """Removes findings of `categories` from answer text; counts what it removed, per category."""

    def __init__(self, categories: frozenset[str]) -> None:
        super().__init__()
        self.categories = categories
        self.counts: Counter[str] = Counter()
        self.sent: dict[int, str] = {}  # per choice, the end of what was already let through

    def text(self, text: str, before: str = "") -> str:
        """`text` without findings; `before` is what precedes it (already sent): context, not changed."""
        findings = [f for f in pii_find(before + text, self.categories) if f.start >= len(before)]
        if not findings:
            return text
        parts, position = [], 0
        for finding in findings:
            self.counts[finding.category] += 1
            start, end = finding.start - len(before), finding.end - len(before)
            parts += [text[position:start], f"[{finding.category.upper()}_REDACTED]"]
            position = end
        parts.append(text[position:])
        return "".join(parts)

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """A copy of a chat.completion with its messages' text scanned."""
        return messages_rewritten(body, self.text)

    def hold_from(self, text: str) -> int:
        return _hold_from(text)

    def rewrite(self, index: int, text: str) -> str:
        before = self.sent.get(index, "")
        self.sent[index] = (before + text)[-CONTEXT:]
        return self.text(text, before)


def _hold_from(text: str) -> int:
    """Where the part of `text` that may still grow into a value starts (len(text): nothing to hold)."""
    begin = text.rfind(_KEY_BEGIN)
    if begin != -1 and "-----END" not in text[begin:] and len(text) - begin <= KEY_BLOCK_MAX:
        return begin
    tail = _OPEN_TAIL.search(text[-HOLD_MAX:])
    if tail is None:
        return len(text)
    return len(text) - (len(text[-HOLD_MAX:]) - tail.start())
