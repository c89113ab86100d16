"""PII detection and redaction cost per prompt (target: under 1 ms for a 2 kB prompt).

Run from the repository root: `.venv/bin/python bench/pii_speed.py`. Prints p50 / p95 / p99 in microseconds
for a 2 kB prompt with one finding of each category, the same length of clean prose, and a 2 kB prompt of
digits and punctuation (the detectors' worst case: many candidate numbers, none valid).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.pii.detect import CATEGORIES
from gateway.pii.redact import Redactor

PROSE = (
    "Our quarterly review covers onboarding, the support backlog and the migration plan. The team agreed to "
    "move the billing reports to the new warehouse before the end of the month, and to keep the old exports "
    "running in parallel for two weeks so that finance can compare the figures line by line. "
)
PII = (
    "Contact Jane at jane.doe@example.com or +44 20 7946 0958; card 4111 1111 1111 1111, IBAN "
    "DE89 3704 0044 0532 0130 00, SSN 078-05-1120, server 192.168.10.254, "
    "key sk-proj-a1B2c3D4e5F6g7H8i9J0kLmN. "
)


def sized(text: str, size: int = 2048) -> str:
    return (text * (size // len(text) + 1))[:size]


def measure(text: str, runs: int = 3000) -> tuple[float, float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        Redactor(frozenset(CATEGORIES)).redact(text)
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(runs * 0.95)], samples[int(runs * 0.99)]


def main() -> None:
    prompts = {
        "2 kB with PII (one of each category, then prose)": PII + sized(PROSE, 2048 - len(PII)),
        "2 kB clean prose": sized(PROSE),
        "2 kB of numbers and punctuation": sized("12-34 5.6.7 (89) 1234 5678, 3:45 2024-01-02 +1 "),
    }
    print("| prompt | p50 µs | p95 µs | p99 µs |\n|---|---|---|---|")
    for name, text in prompts.items():
        p50, p95, p99 = measure(text)
        print(f"| {name} | {p50:.0f} | {p95:.0f} | {p99:.0f} |")


if __name__ == "__main__":
    main()
