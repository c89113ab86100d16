"""Applying a tenant's PII policy to a chat request, and restoring placeholders in its answer.

`pii_apply` runs on the hot path right after validation, before routing, the cache, the provider call and
any log line: blocked categories refuse the request (400, categories only), redacted ones are replaced in
every message's text, in place. The `Redactor` it returns lives for the request only; `StreamRestorer`
restores placeholders in a stream, holding back a possible placeholder cut between two chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from gateway.api.errors import ApiError
from gateway.pii.detect import pii_find
from gateway.pii.policy import PiiPolicy
from gateway.pii.redact import Redactor

PLACEHOLDER_MAX = 16  # "[SECRET_9999]" and the like: the longest tail that may be an unfinished placeholder


def _texts(body: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """(container, key) of every text a request sends: message contents and text parts."""
    for message in body.get("messages") or ():
        content = message.get("content")
        if isinstance(content, str):
            yield message, "content"
        elif isinstance(content, list):
            for part in content:
                if (
                    isinstance(part, dict)
                    and part.get("type") == "text"
                    and isinstance(part.get("text"), str)
                ):
                    yield part, "text"


def pii_apply(body: dict[str, Any], policy: PiiPolicy) -> Redactor | None:
    """Enforce the policy on `body` (in place). Raises ApiError(400, pii_blocked) for blocked categories."""
    blocked, redacted = policy.blocked, policy.redacted
    if not blocked and not redacted:
        return None
    places = list(_texts(body))
    if blocked:
        found = {f.category for holder, key in places for f in pii_find(holder[key], blocked)}
        if found:
            raise ApiError(
                400,
                "The request contains personal data this account does not allow to be sent: "
                f"{', '.join(sorted(found))}. Remove it, or ask the account owner to change the PII policy.",
                param="messages",
                code="pii_blocked",
            )
    redactor = Redactor(redacted)
    if redacted:
        for holder, key in places:
            holder[key] = redactor.redact(holder[key])
    return redactor


def messages_rewritten(body: dict[str, Any], rewrite: Callable[[str], str]) -> dict[str, Any]:
    """A copy of a chat.completion with `rewrite` applied to each choice's message text."""
    choices = []
    for choice in body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            choice = {**choice, "message": {**message, "content": rewrite(message["content"])}}
        choices.append(choice)
    return {**body, "choices": choices}


def completion_restore(body: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """A copy of a chat.completion with the placeholders in its messages restored."""
    return messages_rewritten(body, redactor.restore)


class DeltaRewriter:
    """Rewrites streamed content deltas, per choice, holding back a tail the next chunk may complete.

    Subclasses say where that tail starts (`hold_from`) and what to do with the text let through
    (`rewrite`); the held tail goes out with the next chunk, or with the choice's finishing chunk.
    """

    def __init__(self) -> None:
        self.carry: dict[int, str] = {}

    def hold_from(self, text: str) -> int:
        return len(text)

    def rewrite(self, index: int, text: str) -> str:
        return text

    def chunk(self, chunk: dict[str, Any]) -> dict[str, Any]:
        choices = []
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            index = int(choice.get("index", 0))
            text = delta.get("content")
            if isinstance(text, str) or choice.get("finish_reason"):
                pending = self.carry.pop(index, "") + (text or "")
                if not choice.get("finish_reason"):
                    cut = self.hold_from(pending)
                    if cut < len(pending):
                        self.carry[index], pending = pending[cut:], pending[:cut]
                if isinstance(text, str) or pending:
                    choice = {**choice, "delta": {**delta, "content": self.rewrite(index, pending)}}
            choices.append(choice)
        return {**chunk, "choices": choices}


class StreamRestorer(DeltaRewriter):
    """Restores placeholders in streamed content deltas, holding back a placeholder cut between chunks."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def hold_from(self, text: str) -> int:
        cut = text.rfind("[")
        if cut != -1 and "]" not in text[cut:] and len(text) - cut <= PLACEHOLDER_MAX:
            return cut
        return len(text)

    def rewrite(self, index: int, text: str) -> str:
        return self.redactor.restore(text)
