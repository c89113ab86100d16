"""Counting what a stream delivered, checkpoint by checkpoint (gateway.metering.delivered)."""

from __future__ import annotations

import random

import pytest

from gateway.metering.delivered import Delivered
from gateway.providers.base import Usage
from gateway.tokens import count_text

WORDS = ["the", "gateway", "routes", "request", "token,", "naïvely", "東京", "3.14", "don't", "(x)", "é"]
GLUE = [" ", "", "  ", "\n", ", ", ". "]


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4", "sim/smart"])
def test_checkpoint_counts_add_up_to_the_whole_texts_count(model: str) -> None:
    rng = random.Random(7)
    for _ in range(30):
        delivered = Delivered(model, prompt_estimate=11)
        pieces = [rng.choice(WORDS) + rng.choice(GLUE) for _ in range(300)]
        for piece in pieces:
            delivered.add(piece)
            if rng.random() < 0.2:
                delivered.usage(None)
        usage = delivered.usage(None)
        counted_later = count_text(delivered.carry, model) if delivered.carry else 0

        assert usage.completion_tokens + counted_later == count_text("".join(pieces), model)
        assert usage.prompt_tokens == 11
        assert usage.estimated


def test_text_without_a_word_boundary_is_counted_once_it_is_long() -> None:
    delivered = Delivered("gpt-4o", prompt_estimate=0)
    delivered.add("東" * 5_000)

    assert delivered.usage(Usage(99, 0, False)).completion_tokens > 0
    assert delivered.usage(None).prompt_tokens == 0
