"""The second embedding backend: an OpenAI-compatible `/embeddings` API of one of our upstream endpoints.

`GATEHOUSE_CACHE_EMBEDDER=provider:<endpoint>/<model>` (e.g. `provider:openai/text-embedding-3-small`) sends
the prompt to that endpoint of `GATEHOUSE_ENDPOINTS` (its base URL and key, as for chat) asking for 384
dimensions (`dimensions`, supported by OpenAI's text-embedding-3 models), so entries keep fitting the
`vector(384)` column. It runs on the embedding thread pool like the local model, so it uses a blocking client.
Such models read every script, so `unknown_share` is 0. Switching embedders makes existing entries' vectors
incomparable: clear the caches (`CacheEntry`) when you switch.
"""

from __future__ import annotations

import httpx
import numpy as np
from django.conf import settings

from gateway.cache.embedding import DIMENSIONS, Embedding


class ProviderEmbedder:
    def __init__(self, spec: str) -> None:
        endpoint, _, model = spec.partition("/")
        if endpoint not in settings.GATEHOUSE_ENDPOINTS or not model:
            raise ValueError(
                f"provider embedder {spec!r}: expected <endpoint>/<model> of GATEHOUSE_ENDPOINTS"
            )
        config = settings.GATEHOUSE_ENDPOINTS[endpoint]
        self.name = f"provider:{spec}"
        self.model = model
        self.url = config["base_url"].rstrip("/") + "/embeddings"
        headers = {"authorization": f"Bearer {config['api_key']}"} if config.get("api_key") else {}
        self.client = httpx.Client(headers=headers, timeout=settings.GATEHOUSE_CONNECT_TIMEOUT + 10)

    def embed(self, texts: list[str]) -> list[Embedding]:
        response = self.client.post(
            self.url,
            json={"model": self.model, "input": texts, "dimensions": DIMENSIONS, "encoding_format": "float"},
        )
        response.raise_for_status()
        rows = sorted(response.json()["data"], key=lambda row: row["index"])
        out = []
        for row in rows:
            vector = np.asarray(row["embedding"], dtype=np.float32)
            if vector.shape != (DIMENSIONS,):
                raise ValueError(f"{self.model} returned {vector.shape[0]} dimensions, not {DIMENSIONS}")
            out.append(Embedding(vector / max(float(np.linalg.norm(vector)), 1e-12), 0.0))
        return out
