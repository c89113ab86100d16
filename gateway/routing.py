"""Routing: which models may serve a request, in which order. Pure: no I/O, so it is cheap and testable.

A request names a model of the catalogue or a routing alias. `auto` classifies the task; `auto:<task>` names
it; a `x-gatehouse-task-type` header or `metadata.task_type` overrides both. The task's fallback chain (the
tenant's, else the deployment default) is filtered to the models that can serve this request: needed
capabilities (images, tools, several choices) and a context window that fits the estimated prompt plus the
requested output.

Task classification rules (first match wins):
1. vision: any message has an image part.
2. code: the user's text has a code fence, or code-like syntax (def/class/import/function/#include, `=>`,
   SQL keywords, stack traces), or asks about code (debug, refactor, compile, regex, programming languages).
3. reasoning: the user's text is long (over 1,500 characters) or asks for analysis (step by step, prove,
   derive, analyse, compare, evaluate, trade-offs, calculate, plan, why).
4. simple: everything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.api.errors import ApiError, invalid
from gateway.providers.base import JSON

TASK_TYPES = ("simple", "reasoning", "code", "vision")
ALIASES = {"auto": "", **{f"auto:{task}": task for task in TASK_TYPES}}
LONG_PROMPT_CHARS = 1_500

_CODE = re.compile(
    r"```|^\s*(def|class|import|from \S+ import|function|const|let|var|public|private|#include)\b|=>|"
    r"\b(SELECT .* FROM|INSERT INTO|CREATE TABLE)\b|Traceback \(most recent call last\)|\bat \S+\(\S+:\d+\)|"
    r"\b(debug|refactor|compile[sd]?|regex|stack ?trace|segfault|unit tests?|python|javascript|typescript|"
    r"golang|rust|java|c\+\+|kotlin|swift|sql|bash script|function that|code)\b",
    re.IGNORECASE | re.MULTILINE,
)
_REASONING = re.compile(
    r"\b(step[- ]by[- ]step|prove|proof|derive|analy[sz]e|analysis|compare|evaluate|trade-?offs?|calculate|"
    r"reason(ing)?|plan|strategy|why|pros and cons|implications)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A snapshot of one catalogue entry (the hot path never touches the ORM)."""

    name: str
    provider: str
    endpoint: str
    upstream_model: str
    input_price_per_mtok: Decimal
    output_price_per_mtok: Decimal
    context_window: int
    max_output_tokens: int
    supports_vision: bool
    supports_tools: bool
    supports_n: bool


@dataclass(frozen=True, slots=True)
class Route:
    task_type: str  # "" when the client named a model
    candidates: tuple[ModelInfo, ...]
    skipped: tuple[tuple[str, str], ...]  # (model, why) for chain models that cannot serve this request


def _parts(body: JSON) -> tuple[str, bool]:
    """The user's text (all user turns) and whether any message carries an image."""
    texts: list[str] = []
    has_image = False
    for message in body.get("messages", ()):
        content: Any = message.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    if part.get("type") == "image_url":
                        has_image = True
                    elif message.get("role") == "user" and isinstance(part.get("text"), str):
                        texts.append(part["text"])
        elif isinstance(content, str) and message.get("role") == "user":
            texts.append(content)
    return "\n".join(texts), has_image


def classify(body: JSON) -> str:
    """The task type of a request, by the rules of this module's docstring."""
    text, has_image = _parts(body)
    if has_image:
        return "vision"
    if _CODE.search(text):
        return "code"
    if len(text) > LONG_PROMPT_CHARS or _REASONING.search(text):
        return "reasoning"
    return "simple"


def task_type_override(body: JSON, header: str | None) -> str | None:
    """The task type forced by the `x-gatehouse-task-type` header or `metadata.task_type`, if valid."""
    metadata = body.get("metadata")
    value = header or (metadata.get("task_type") if isinstance(metadata, dict) else None)
    if value is None:
        return None
    if value not in TASK_TYPES:
        raise invalid(f"task type must be one of {', '.join(TASK_TYPES)}, got {value!r}.", param="task_type")
    return value


def model_allowed(requested: str, allowed_models: tuple[str, ...]) -> bool:
    return not allowed_models or requested in allowed_models


def route(
    body: JSON,
    *,
    catalogue: dict[str, ModelInfo],
    chains: dict[str, list[str]],
    prompt_tokens: int,
    task_header: str | None = None,
) -> Route:
    """Order the models that can serve `body`. Raises ApiError (400) when none can."""
    requested: str = body["model"]
    override = task_type_override(body, task_header)
    if requested in ALIASES:
        task = override or ALIASES[requested] or classify(body)
        names = chains.get(task, [])
    elif requested in catalogue:
        task, names = "", [requested]
    else:
        raise ApiError(
            400,
            f"The model `{requested}` does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
    _, has_image = _parts(body)
    n = body.get("n") or 1
    output = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    candidates: list[ModelInfo] = []
    skipped: list[tuple[str, str]] = []
    for name in names:
        info = catalogue.get(name)
        reason = _unfit(
            info, has_image=has_image, tools=bool(body.get("tools")), n=n, needed=prompt_tokens + output
        )
        if reason:
            skipped.append((name, reason))
        elif info is not None:
            candidates.append(info)
    if not candidates:
        raise _no_candidate(requested, task, skipped, prompt_tokens)
    return Route(task_type=task, candidates=tuple(candidates), skipped=tuple(skipped))


def _unfit(info: ModelInfo | None, *, has_image: bool, tools: bool, n: int, needed: int) -> str:
    if info is None:
        return "not in the catalogue"
    if has_image and not info.supports_vision:
        return "no image input"
    if tools and not info.supports_tools:
        return "no tool calling"
    if n > 1 and not info.supports_n:
        return f"cannot return n={n} choices"
    if needed > info.context_window:
        return f"context window {info.context_window} < {needed} tokens"
    return ""


def _no_candidate(requested: str, task: str, skipped: list[tuple[str, str]], prompt_tokens: int) -> ApiError:
    if not skipped:
        return ApiError(
            400, f"No models are configured for task type '{task}'.", param="model", code="model_not_found"
        )
    reasons = "; ".join(f"{name}: {why}" for name, why in skipped)
    if all(why.startswith("context window") for _, why in skipped):
        return ApiError(
            400,
            f"This model's maximum context length is exceeded: the request needs about {prompt_tokens} "
            f"prompt tokens plus the requested output ({reasons}).",
            param="messages",
            code="context_length_exceeded",
        )
    target = f"model `{requested}`" if not task else f"task type '{task}'"
    return ApiError(
        400,
        f"No model of {target} can serve this request ({reasons}).",
        param="model",
        code="unsupported_value",
    )
