"""The composition root: `build_app` makes the process-wide services once and hands each
layer the ones it needs, then stacks the layers in the default order around ProviderApp.

    Services (built once)           layers that get them
    configs: ConfigManager          every layer
    health: HealthRegistry          Auth, RateLimit, Cache write it; Metrics, ProviderApp read it
    cooldowns: CooldownTracker      Router writes it; Metrics reads it
    key_stores: KeyStores           Auth looks keys up; Admin mints and revokes
    (Auth itself)                   Dashboard's sign-in checks credentials with it
    audits: AuditLogs               Auth and Admin write
    upstreams: UpstreamClients      ProviderApp
    watch: ConfigWatch              (the file watcher and the reload channel)
    ledger: Ledger                  Metrics hands it each finished request; Admin queries it
    tracer: RequestTracer | None    ProviderApp (attempt spans), TracingMiddleware (request spans)

A layer built alone (mounted by a user) makes the defaults it was not given, so every layer
stays usable on its own; `build_app` returns an `LLMApp` whose named handles replace any
search through the stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgi_llm.admin.deployments import DeploymentsView
from asgi_llm.admin.middleware import AdminMiddleware
from asgi_llm.auth.audit import AuditLogs
from asgi_llm.auth.keys import KeyStores
from asgi_llm.auth.middleware import AuthMiddleware
from asgi_llm.cache.middleware import CacheMiddleware
from asgi_llm.config.default import default_config
from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager, as_manager
from asgi_llm.config.watch import ConfigWatch
from asgi_llm.dashboard.middleware import DashboardMiddleware
from asgi_llm.health import HealthRegistry
from asgi_llm.ledger.service import Ledger
from asgi_llm.lifespan import run_lifespan
from asgi_llm.metrics.middleware import MetricsMiddleware
from asgi_llm.providers.app import ProviderApp
from asgi_llm.providers.clients import UpstreamClients
from asgi_llm.ratelimit.middleware import RateLimitMiddleware
from asgi_llm.responses_api.middleware import ResponsesMiddleware
from asgi_llm.routing.health import CooldownTracker
from asgi_llm.routing.middleware import RouterMiddleware
from asgi_llm.tracing.middleware import TracingMiddleware
from asgi_llm.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from asgi_llm.tracing.tracer import RequestTracer


@dataclass(slots=True)
class Services:
    """What the layers of one stack share, made once per process."""

    configs: ConfigManager
    health: HealthRegistry
    cooldowns: CooldownTracker
    key_stores: KeyStores
    audits: AuditLogs
    upstreams: UpstreamClients
    watch: ConfigWatch
    ledger: Ledger
    tracer: RequestTracer | None = None  # when the config has `tracing:` at startup

    @classmethod
    def build(
        cls, configs: ConfigManager, *, transport_factory: Any = None, span_exporter: Any = None
    ) -> Services:
        return cls(
            configs=configs,
            health=HealthRegistry(),
            cooldowns=CooldownTracker(),
            key_stores=KeyStores(),
            audits=AuditLogs(),
            upstreams=UpstreamClients(transport_factory),
            watch=ConfigWatch(configs),
            ledger=Ledger(configs),
            tracer=_tracer(configs.current, span_exporter),
        )

    async def startup(self) -> None:
        if self.tracer is not None:
            self.tracer.start()
        await self.watch.startup()
        await self.ledger.startup()

    async def shutdown(self) -> None:
        """After every layer's shutdown (the lifespan owner runs it last)."""
        await self.watch.shutdown()
        await self.ledger.shutdown()  # writes what is still queued (bounded)
        await self.upstreams.aclose()
        await self.key_stores.aclose()
        self.audits.close()
        if self.tracer is not None:  # last: spans of requests that ended above are exported
            await self.tracer.shutdown()


def _tracer(config: Config, exporter: Any) -> RequestTracer | None:
    """OpenTelemetry is imported only here, and only when tracing is configured (extra `otel`).
    `exporter` replaces the OTLP exporter (tests: the SDK's InMemorySpanExporter)."""
    if config.tracing is None:
        return None
    from asgi_llm.tracing.tracer import RequestTracer

    return RequestTracer(config.tracing, exporter=exporter)


class LLMApp:
    """The full stack as one ASGI app, with a handle on each layer and on the services.

    It is the stack's lifespan owner: the services start before the layers and stop after
    them; a startup that fails is reported as `lifespan.startup.failed` (asgi_llm/lifespan.py).
    """

    def __init__(
        self,
        *,
        services: Services,
        metrics: MetricsMiddleware,
        auth: AuthMiddleware,
        admin: AdminMiddleware,
        dashboard: DashboardMiddleware | None = None,
        responses: ResponsesMiddleware,
        ratelimit: RateLimitMiddleware,
        cache: CacheMiddleware,
        router: RouterMiddleware,
        provider: ProviderApp,
    ) -> None:
        self.services = services
        self.configs = services.configs
        self.metrics = metrics
        self.auth = auth
        self.admin = admin
        self.dashboard = dashboard
        self.responses = responses
        self.ratelimit = ratelimit
        self.cache = cache
        self.router = router
        self.provider = provider
        self.app: ASGIApp = metrics  # the outermost layer
        if services.tracer is not None:  # the request's span around the whole stack
            self.app = TracingMiddleware(metrics, config=services.configs, tracer=services.tracer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            hooks = (self.services.startup, self.services.shutdown)
            await run_lifespan(scope, receive, send, self.app, "asgi-llm services", hooks)
            return
        await self.app(scope, receive, send)

    def drain(self, timeout: float) -> None:
        """Server shutdown: streams still running after `timeout` end with an error event."""
        self.provider.drain(timeout)


def build_app(
    config: Config | ConfigManager | None = None, *, transport_factory: Any = None, span_exporter: Any = None
) -> LLMApp:
    """Metrics, Auth, Dashboard, Admin, Responses, RateLimit, Cache, Router, then ProviderApp (outermost
    first).

    Every layer is present whatever the config says, and does nothing while its section is
    absent: a live reload can turn a feature on or off without rebuilding the stack. The
    services' config watch follows the config file (and the Redis reload channel) from
    lifespan startup to shutdown. With `tracing:` in the config at startup, a TracingMiddleware
    wraps the whole stack (the request's span) and ProviderApp opens a span per attempt;
    `span_exporter` replaces their OTLP exporter.
    """
    manager = as_manager(config if config is not None else default_config())
    services = Services.build(manager, transport_factory=transport_factory, span_exporter=span_exporter)
    provider = ProviderApp(
        config=manager, clients=services.upstreams, health=services.health, tracer=services.tracer
    )
    router = RouterMiddleware(provider, config=manager, cooldowns=services.cooldowns)
    cache = CacheMiddleware(router, config=manager, health=services.health)
    ratelimit = RateLimitMiddleware(cache, config=manager, health=services.health)
    responses = ResponsesMiddleware(ratelimit, config=manager)
    admin = AdminMiddleware(
        responses,
        config=manager,
        cache=cache,
        limiter=ratelimit,
        key_stores=services.key_stores,
        audits=services.audits,
        ledger=services.ledger,
        deployments=DeploymentsView(
            cooldowns=services.cooldowns,
            health=services.health,
            latency=router.latency,
            in_flight=lambda: metrics.in_flight,
        ),
    )
    dashboard = DashboardMiddleware(admin, config=manager)  # admin.ui; inside Auth (its docstring)
    auth = AuthMiddleware(
        dashboard,
        config=manager,
        key_stores=services.key_stores,
        audits=services.audits,
        health=services.health,
    )
    dashboard.auth = auth  # its sign-in checks credentials with Auth's own code
    metrics = MetricsMiddleware(
        auth,
        config=manager,
        health=services.health,
        cooldowns=services.cooldowns,
        listeners=(services.ledger,),
    )
    services.ledger.on_counts = metrics.ledger_counts
    return LLMApp(
        services=services,
        metrics=metrics,
        auth=auth,
        admin=admin,
        dashboard=dashboard,
        responses=responses,
        ratelimit=ratelimit,
        cache=cache,
        router=router,
        provider=provider,
    )


__all__ = ["LLMApp", "Services", "build_app"]
