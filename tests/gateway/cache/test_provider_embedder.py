"""The provider embedding backend against an HTTP server that answers in OpenAI's documented format."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import numpy as np
import pytest
from pytest_django import Settings

from gateway.cache.provider_embedder import ProviderEmbedder

RECEIVED: list[dict[str, Any]] = []


class Embeddings(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        RECEIVED.append({"path": self.path, "auth": self.headers["authorization"], "body": body})
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text))] + [1.0] * 383}
            for i, text in reversed(list(enumerate(body["input"])))  # out of order: the index decides
        ]
        answer = {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": 3, "total_tokens": 3},
        }
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream(settings: Settings) -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Embeddings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/v1"
    settings.GATEHOUSE_ENDPOINTS = {
        **settings.GATEHOUSE_ENDPOINTS,
        "emb": {"base_url": url, "api_key": "sk-e"},
    }
    yield url
    server.shutdown()


def test_it_asks_the_endpoint_for_384_dimensions_and_returns_unit_vectors_in_order(upstream: str) -> None:
    embedder = ProviderEmbedder("emb/text-embedding-3-small")

    out = embedder.embed(["a", "abc"])

    assert RECEIVED[-1]["path"] == "/v1/embeddings"
    assert RECEIVED[-1]["auth"] == "Bearer sk-e"
    assert RECEIVED[-1]["body"]["model"] == "text-embedding-3-small"
    assert RECEIVED[-1]["body"]["dimensions"] == 384
    assert [round(float(np.linalg.norm(e.vector)), 5) for e in out] == [1.0, 1.0]
    assert out[0].vector[0] < out[1].vector[0]  # "a" (1.0) then "abc" (3.0): the order of the input
    assert {e.unknown_share for e in out} == {0.0}


def test_an_unknown_endpoint_is_refused() -> None:
    with pytest.raises(ValueError, match="endpoint"):
        ProviderEmbedder("nowhere/model")
