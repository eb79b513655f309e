"""build_app: the full stack in its default order around ProviderApp."""

from __future__ import annotations

from typing import Any

from asgi_llm.admin.middleware import AdminMiddleware
from asgi_llm.auth.middleware import AuthMiddleware
from asgi_llm.cache.middleware import CacheMiddleware
from asgi_llm.config.default import default_config
from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager, as_manager
from asgi_llm.config.watch import LiveConfig
from asgi_llm.metrics.middleware import MetricsMiddleware
from asgi_llm.providers.app import ProviderApp
from asgi_llm.ratelimit.middleware import RateLimitMiddleware
from asgi_llm.routing.middleware import RouterMiddleware
from asgi_llm.types import ASGIApp


def build_app(config: Config | ConfigManager | None = None, *, transport_factory: Any = None) -> ASGIApp:
    """Metrics, Auth, Admin, RateLimit, Cache, Router, then ProviderApp (outermost first).

    Every layer is present whatever the config says, and does nothing while its section is
    absent: a live reload can turn a feature on or off without rebuilding the stack. Around
    them all, LiveConfig watches the config file (and the Redis reload channel) while the
    app runs, on lifespan startup to shutdown.
    """
    manager = as_manager(config if config is not None else default_config())
    app: ASGIApp = ProviderApp(config=manager, transport_factory=transport_factory)
    app = RouterMiddleware(app, config=manager)
    cache = CacheMiddleware(app, config=manager)
    limiter = RateLimitMiddleware(cache, config=manager)
    app = AdminMiddleware(limiter, config=manager, cache=cache, limiter=limiter)
    auth = AuthMiddleware(app, config=manager)
    app.auth = auth  # type: ignore[attr-defined]
    return LiveConfig(MetricsMiddleware(auth, config=manager), config=manager)
