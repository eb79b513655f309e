"""The public surface is what docs/api.md lists: pinned here."""

import asgi_llm


def test_public_names():
    assert set(asgi_llm.__all__) >= {
        "AuthMiddleware", "Config", "ConfigError", "ConfigManager", "LLMContext", "LLMLayer",
        "Principal", "ProviderApp", "ProxyError", "RateLimitMiddleware", "RouterMiddleware",
        "Usage", "build_app", "get_context", "lifespan",
    }
    for name in asgi_llm.__all__:
        assert getattr(asgi_llm, name) is not None
