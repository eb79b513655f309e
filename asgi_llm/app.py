"""build_app: the full stack in its default order around ProviderApp."""

from __future__ import annotations

from typing import Any

from asgi_llm.config.default import default_config
from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager, as_manager
from asgi_llm.providers.app import ProviderApp
from asgi_llm.routing.middleware import RouterMiddleware
from asgi_llm.types import ASGIApp


def build_app(config: Config | ConfigManager | None = None, *,
              transport_factory: Any = None) -> ASGIApp:
    """Metrics, Auth, RateLimit, Cache, Router, then ProviderApp (outermost first).

    Layers whose config section is absent are left out.
    """
    manager = as_manager(config if config is not None else default_config())
    app: ASGIApp = ProviderApp(config=manager, transport_factory=transport_factory)
    app = RouterMiddleware(app, config=manager)
    return app
