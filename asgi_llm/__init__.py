"""asgi-llm: composable pure-ASGI middleware for an OpenAI-compatible LLM proxy."""

from asgi_llm.app import build_app
from asgi_llm.auth import AuthMiddleware
from asgi_llm.cache import CacheMiddleware
from asgi_llm.config import Config, ConfigManager
from asgi_llm.context import LLMContext, Principal, Usage, get_context
from asgi_llm.errors import ConfigError, ProxyError
from asgi_llm.exchange import LLMLayer
from asgi_llm.lifespan import lifespan
from asgi_llm.metrics import MetricsMiddleware
from asgi_llm.providers.app import ProviderApp
from asgi_llm.providers.transport import (
    TransportError,
    TransportTimeout,
    UpstreamRequest,
    UpstreamResponse,
    UpstreamTransport,
)
from asgi_llm.ratelimit import RateLimitMiddleware
from asgi_llm.routing.middleware import RouterMiddleware

__version__ = "0.1.0"

__all__ = [
    "AuthMiddleware",
    "CacheMiddleware",
    "Config",
    "ConfigError",
    "ConfigManager",
    "LLMContext",
    "LLMLayer",
    "MetricsMiddleware",
    "Principal",
    "ProviderApp",
    "ProxyError",
    "RateLimitMiddleware",
    "RouterMiddleware",
    "TransportError",
    "TransportTimeout",
    "UpstreamRequest",
    "UpstreamResponse",
    "UpstreamTransport",
    "Usage",
    "build_app",
    "get_context",
    "lifespan",
]
