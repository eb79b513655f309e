"""Provider name (config `provider:`) -> its registry entry: the wire format that writes and
reads its requests, and, when plain HTTP through the deployment's pool will not do, the
transport made for each of its deployments.

A new provider is one entry here: its wire format (request building, signing included, and
reading answers, streams and errors back) and, if it needs one, its own transport (a mock)
or a wrapper around the deployment's pool (Vertex AI's access tokens). The pool and
ProviderApp never branch on a provider's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from asgi_llm.config.schema import Deployment
from asgi_llm.providers.anthropic import AnthropicProvider
from asgi_llm.providers.aws_chain import bedrock_transport
from asgi_llm.providers.base import Provider
from asgi_llm.providers.bedrock import BedrockProvider
from asgi_llm.providers.gemini import GeminiProvider
from asgi_llm.providers.google_auth import vertex_transport
from asgi_llm.providers.mock import MockTransport
from asgi_llm.providers.openai import AzureProvider, OpenAIProvider
from asgi_llm.providers.presets import PRESETS, PresetProvider
from asgi_llm.providers.transport import UpstreamTransport
from asgi_llm.providers.vertex import VertexProvider


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    wire: Provider
    # Made once per deployment instead of the pool's default (or a user's transport_factory).
    transport: Callable[[Deployment], UpstreamTransport] | None = None
    # Wraps the pool a deployment gets (the default, or a user's transport_factory's): what
    # adds credentials that change while it runs (an access token). Not used with `transport`.
    wrap: Callable[[Deployment, UpstreamTransport], UpstreamTransport] | None = None


_OPENAI = OpenAIProvider()  # chat only: /v1/responses goes out translated

REGISTRY: dict[str, ProviderEntry] = {
    "openai": ProviderEntry(OpenAIProvider(native_responses=True)),
    "openai-compatible": ProviderEntry(_OPENAI),
    "azure": ProviderEntry(AzureProvider(native_responses=True)),
    "anthropic": ProviderEntry(AnthropicProvider()),
    "gemini": ProviderEntry(GeminiProvider()),
    "vertex": ProviderEntry(VertexProvider(), wrap=vertex_transport),  # Gemini, or Claude by name
    "bedrock": ProviderEntry(BedrockProvider(), wrap=bedrock_transport),  # SigV4 just before sending
    "mock": ProviderEntry(_OPENAI, transport=MockTransport),  # an OpenAI server, in process
    **{name: ProviderEntry(PresetProvider(name)) for name in PRESETS},
}


def entry_for(name: str) -> ProviderEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise LookupError(f"provider {name!r} is not available in this version") from None


def provider_for(name: str) -> Provider:
    """The wire format of a provider (ProviderApp, and the check at construction)."""
    return entry_for(name).wire


__all__ = ["REGISTRY", "ProviderEntry", "entry_for", "provider_for"]
