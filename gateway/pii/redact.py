"""Replacing findings with typed placeholders, consistently within one request, and putting them back.

`[EMAIL_1]`, `[PHONE_2]`, `[CARD_1]`...: the same value gets the same placeholder everywhere in the request
(every message), so the model can still tell that two mentions are the same person or card. The originals
stay in the `Redactor`, in memory, for the request only: they are never logged or stored, and the per-request
record keeps counts per category, never values. `restore` maps placeholders in the model's answer back.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Final

from gateway.pii.detect import pii_find

_PLACEHOLDER: Final = re.compile(r"\[(SECRET|EMAIL|IBAN|CARD|SSN|IP|PHONE)_(\d{1,4})\]")


class Redactor:
    """One request's redaction: value -> placeholder, placeholder -> value, counts per category."""

    def __init__(self, categories: frozenset[str]) -> None:
        self.categories = categories
        self.placeholders: dict[tuple[str, str], str] = {}
        self.originals: dict[str, str] = {}
        self.counts: Counter[str] = Counter()

    def redact(self, text: str) -> str:
        """`text` with every finding of the redacted categories replaced by its placeholder."""
        findings = pii_find(text, self.categories)
        if not findings:
            return text
        parts, position = [], 0
        for finding in findings:
            parts.append(text[position : finding.start])
            parts.append(self._placeholder(finding.category, finding.value))
            position = finding.end
        parts.append(text[position:])
        return "".join(parts)

    def _placeholder(self, category: str, value: str) -> str:
        key = (category, value)
        if key not in self.placeholders:
            self.counts[category] += 1
            placeholder = f"[{category.upper()}_{self.counts[category]}]"
            self.placeholders[key] = placeholder
            self.originals[placeholder] = value
        return self.placeholders[key]

    def restore(self, text: str) -> str:
        """The model's answer with this request's placeholders replaced by the original values."""
        if not self.originals:
            return text
        return _PLACEHOLDER.sub(lambda m: self.originals.get(m.group(0), m.group(0)), text)
