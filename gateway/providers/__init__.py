"""Provider registry: provider kind (a catalogue entry's `provider`) -> implementation.

A new provider is a module with one Provider subclass, registered here; nothing else dispatches on kinds.
"""

from __future__ import annotations

from functools import cache

from django.utils.module_loading import import_string

from gateway.providers.base import Provider

REGISTRY: dict[str, str] = {
    "openai": "gateway.providers.openai.OpenAIProvider",
    "openai_compatible": "gateway.providers.openai.OpenAIProvider",
    "simulator": "gateway.providers.openai.OpenAIProvider",
    "anthropic": "gateway.providers.anthropic.AnthropicProvider",
}


@cache
def get_provider(kind: str) -> Provider:
    """The (stateless, shared) provider for `kind`. Raises KeyError for an unknown kind."""
    provider: Provider = import_string(REGISTRY[kind])()
    return provider
