"""TracingMiddleware: one SERVER span around each LLM request, current while it runs.

`build_app` puts it outside the whole stack when the config has `tracing:` at startup, so the
span covers every layer (auth, limits, cache, routing, the stream to its last byte) and the
attempt spans ProviderApp opens are its children. It must be outside the layer that runs the
request's exchange: it reads the finished LLMContext from `scope["state"]["llm"]` after the
inner app returns. Non-LLM paths and non-HTTP scopes pass straight through, and so does every
request while a reload has removed `tracing:`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager, as_manager
from asgi_llm.request import match_endpoint
from asgi_llm.tracing.attributes import route_template
from asgi_llm.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from asgi_llm.tracing.tracer import RequestTracer


class TracingMiddleware:
    def __init__(self, app: ASGIApp, *, config: Config | ConfigManager, tracer: RequestTracer) -> None:
        self.app = app
        self.configs = as_manager(config)
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        config = self.configs.current
        route = match_endpoint(scope, config.server.path_prefix) if config.tracing is not None else None
        if route is None:
            await self.app(scope, receive, send)
            return
        if scope.get("state") is None:
            scope["state"] = {}  # the exchange puts the context in this dict: read it after
        template = route_template(route.name, route.target, config.server.path_prefix)
        with self.tracer.request_span(scope, f"{scope['method']} {template}", template):
            await self.app(scope, receive, send)


__all__ = ["TracingMiddleware"]
