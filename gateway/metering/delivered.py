"""What a stream has delivered so far, as its checkpoints record it (gateway.metering.opened)."""

from __future__ import annotations

from gateway.providers.base import Usage
from gateway.tokens import count_text


class Delivered:
    """The text a stream has delivered, and its tokens as of the last checkpoint, counted as it goes: each
    checkpoint counts only the text since the previous one, cut before a word so that the pieces' counts add
    up to the whole's (tokenizers split text into words before they merge bytes)."""

    MAX_CARRY = 4096  # text without a word boundary is counted anyway past this

    def __init__(self, model: str, prompt_estimate: int) -> None:
        self.model = model
        self.prompt_estimate = prompt_estimate
        self.pieces: list[str] = []
        self.counted = 0  # pieces already counted (or carried)
        self.carry = ""  # counted at the next checkpoint: after the last word boundary
        self.tokens = 0

    def add(self, text: str) -> None:
        self.pieces.append(text)

    def text(self) -> str:
        return "".join(self.pieces)

    def usage(self, reported: Usage | None) -> Usage:
        """What has been delivered so far, estimated (the provider reports its own counts at the end)."""
        fresh = self.carry + "".join(self.pieces[self.counted :])
        self.counted = len(self.pieces)
        cut = len(fresh) if len(fresh) > self.MAX_CARRY else _last_word_start(fresh)
        if cut:
            self.tokens += count_text(fresh[:cut], self.model)
        self.carry = fresh[cut:]
        prompt = reported.prompt_tokens if reported is not None else self.prompt_estimate
        return Usage(prompt, self.tokens, True)


def _last_word_start(text: str) -> int:
    """The index of the space that starts the last word of `text` (0 if none): a place to cut where both
    sides count as they would together. A word here is a space then a letter, after something not a space:
    tokenizers of the GPT family (and byte-level BPEs like them) start a piece there."""
    for index in range(len(text) - 2, 0, -1):
        if text[index] == " " and text[index + 1].isalpha() and not text[index - 1].isspace():
            return index
    return 0
