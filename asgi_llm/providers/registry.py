"""Provider name (config `provider:`) -> the provider that speaks its wire format."""

from __future__ import annotations

from asgi_llm.providers.anthropic import AnthropicProvider
from asgi_llm.providers.base import Provider
from asgi_llm.providers.openai import AzureProvider, OpenAIProvider

PROVIDERS: dict[str, Provider] = {
    "openai": OpenAIProvider(),
    "openai-compatible": OpenAIProvider(),
    "azure": AzureProvider(),
    "anthropic": AnthropicProvider(),
    "mock": OpenAIProvider(),  # the mock transport speaks OpenAI
}


def provider_for(name: str) -> Provider:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise LookupError(f"provider {name!r} is not available in this version") from None
