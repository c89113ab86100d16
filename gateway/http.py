"""The only place the gateway builds HTTP clients: one pooled httpx.AsyncClient per endpoint and event loop,
kept for the life of the process (connections are reused across requests)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx
from django.conf import settings
from httpx_aiohttp import AiohttpTransport

from gateway.providers.base import Deployment, Timeouts
from gateway.routing import ModelInfo

_clients: dict[tuple[str, int], httpx.AsyncClient] = {}


def http_client(endpoint: str) -> httpx.AsyncClient:
    key = (endpoint, id(asyncio.get_running_loop()))
    client = _clients.get(key)
    if client is None:
        client = httpx.AsyncClient(
            transport=AiohttpTransport(
                limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=60)
            ),
            timeout=httpx.Timeout(
                connect=settings.GATEHOUSE_CONNECT_TIMEOUT,
                read=settings.GATEHOUSE_TOTAL_TIMEOUT,
                write=settings.GATEHOUSE_CONNECT_TIMEOUT,
                pool=settings.GATEHOUSE_CONNECT_TIMEOUT,
            ),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=60),
            follow_redirects=False,
        )
        _clients[key] = client
    return client


def timeouts() -> Timeouts:
    return Timeouts(
        connect=settings.GATEHOUSE_CONNECT_TIMEOUT,
        first_byte=settings.GATEHOUSE_FIRST_BYTE_TIMEOUT,
        total=settings.GATEHOUSE_TOTAL_TIMEOUT,
    )


def deployment_for(model: ModelInfo, credentials: Mapping[str, str]) -> Deployment:
    """Where to send `model`: its endpoint's URL from settings.GATEHOUSE_ENDPOINTS, with the tenant's own key
    for that endpoint when it has one (`credentials`), else the deployment's."""
    endpoint = settings.GATEHOUSE_ENDPOINTS.get(model.endpoint)
    if endpoint is None:
        raise KeyError(f"endpoint {model.endpoint!r} of model {model.name!r} is not configured")
    return Deployment(
        provider=model.provider,
        model=model.upstream_model,
        base_url=endpoint["base_url"],
        api_key=credentials.get(model.endpoint) or endpoint.get("api_key", ""),
    )
