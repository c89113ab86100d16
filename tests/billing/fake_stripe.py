"""Stripe's HTTP side for the tests of what localstripe cannot run: the real `stripe` SDK talks to a fake
HTTP client that records each request and answers from fixtures in Stripe's documented format
(tests/fixtures/stripe/, whose README says where each format comes from)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import stripe

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stripe"
CONNECTION_ERROR = "connection error"


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    form: dict[str, str]
    idempotency_key: str | None


class FakeStripe(stripe.HTTPClient):
    """Stripe's HTTP side: records each request and answers with the next fixture (or a connection error)."""

    name = "fake"

    def __init__(self, *answers: str, fills: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.answers = list(answers)
        self.fills = dict(fills or {})  # "{{name}}" values that do not come from the request
        self.requests: list[Sent] = []

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        body = post_data.decode() if isinstance(post_data, bytes) else post_data or ""
        query = urlsplit(url).query
        form = {key: values[0] for key, values in parse_qs(body or query, strict_parsing=bool(body)).items()}
        self.requests.append(
            Sent(method.upper(), urlsplit(url).path, form, (headers or {}).get("Idempotency-Key"))
        )
        assert self.answers, f"unexpected request {method} {url}"
        answer = self.answers.pop(0)
        if answer == CONNECTION_ERROR:
            # The SDK's own error for a failed connection (stripe's constructors are untyped).
            raise stripe.APIConnectionError("Connection reset by peer (fake)")  # type: ignore[no-untyped-call]
        fixture = json.loads((FIXTURES / f"{answer}.json").read_text())
        given = {**self.fills, "seq": len(self.requests)}
        filled = _fill(_fill_given(fixture["body"], given), form)
        return json.dumps(filled), fixture["status"], fixture["headers"]

    def close(self) -> None:
        pass


def _fill_given(value: Any, fills: Mapping[str, Any]) -> Any:
    """A fixture string that is exactly "{{name}}" for a given `name` becomes its value (any JSON type)."""
    if isinstance(value, dict):
        return {key: _fill_given(item, fills) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill_given(item, fills) for item in value]
    if isinstance(value, str) and "{{" in value:
        for name, item in fills.items():
            if value == "{{" + name + "}}":
                return item
            value = value.replace("{{" + name + "}}", str(item))
    return value


def _fill(value: Any, form: dict[str, str]) -> Any:
    """The fixture's "{{name}}" strings filled from the request's form field `name` (see
    tests/fixtures/stripe/README.md); `payload[x]` fields also answer to "{{x}}"; integers stay integers."""
    if isinstance(value, dict):
        return {key: _fill(item, form) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, form) for item in value]
    if not isinstance(value, str) or "{{" not in value:
        return value
    fields = {**{key[8:-1]: item for key, item in form.items() if key.startswith("payload[")}, **form}
    if value.startswith("{{") and value.endswith("}}") and value[2:-2] in ("timestamp", "amount"):
        return int(fields[value[2:-2]])
    for name, item in fields.items():
        value = value.replace("{{" + name + "}}", item)
    return value


def client(fake: FakeStripe) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_gatehouse_meters", http_client=fake, max_network_retries=0)
