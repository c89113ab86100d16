"""Fitting a conversation into the context window: the tenant's "truncate" overflow policy.

The oldest turns go first (a turn: a user message with the answers, tool calls and tool results after
it); system and developer messages and the last message always stay. The fewest turns that make the
request fit are found by bisection over whole turns, so a long conversation costs a few token counts, not
one per turn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from gateway.api.errors import ApiError

T = TypeVar("T")
KEPT_ROLES = frozenset({"system", "developer"})


def _turns(messages: list[Any]) -> list[list[int]]:
    """Indexes of the droppable messages by turn: a user message with the answers (and tool calls and
    results) that follow it, so no answer or tool result is left without what it answered."""
    turns: list[list[int]] = []
    for index, message in enumerate(messages[:-1]):
        role = message.get("role") if isinstance(message, dict) else None
        if role in KEPT_ROLES:
            continue
        if role == "user" or not turns:
            turns.append([index])
        else:
            turns[-1].append(index)
    return turns


def without_oldest(body: dict[str, Any], turns: int) -> dict[str, Any]:
    """`body` without its `turns` oldest droppable turns."""
    messages = body["messages"]
    dropped = {index for turn in _turns(messages)[:turns] for index in turn}
    return {**body, "messages": [m for index, m in enumerate(messages) if index not in dropped]}


def fit_by_dropping_turns(
    body: dict[str, Any], attempt: Callable[[dict[str, Any]], T], error: ApiError
) -> tuple[T, dict[str, Any], int]:
    """The first `attempt` (e.g. routing) that fits once the fewest oldest turns are gone: its result, the
    shortened body and how many messages were dropped. Raises `error` when even the last turn alone does
    not fit; other errors of `attempt` propagate."""
    available = len(_turns(body["messages"]))
    best: tuple[T, dict[str, Any]] | None = None
    low, high = 1, available
    while low <= high:
        middle = (low + high) // 2
        shorter = without_oldest(body, middle)
        try:
            result = attempt(shorter)
        except ApiError as refused:
            if refused.code != "context_length_exceeded":
                raise
            low = middle + 1
            continue
        best = (result, shorter)
        high = middle - 1
    if best is None:
        raise error
    return best[0], best[1], len(body["messages"]) - len(best[1]["messages"])
