"""Where MetricsMiddleware sits decides what it measures: the same stack twice.

    outermost: Metrics ─► Auth ─► RateLimit ─► Router ─► ProviderApp   (build_app's place)
    innermost: Auth ─► RateLimit ─► Metrics ─► Router ─► ProviderApp

Outermost, it records every LLM request that arrives, refusals by auth (401/403) and by the
limits (429) included, with their error type and code, and its clock stops when the whole
exchange is over (after the rate limiter has settled). Innermost, it records only admitted
traffic, what reached the router: upstream load and upstream outcomes, no refusals. Both
start the clock when the request's context was opened (by whichever layer is outermost), so
for an admitted request they differ only by the outer layers' after-work. Cache hits are
recorded only when Metrics sits outside the cache.

Each stack gets a `Tally` exporter here so the difference is easy to see; with
`metrics: {prometheus: {path: /metrics}}` in the config each would also serve its own
`/metrics`.

    hypercorn examples.metrics_placement:app     # /outer/v1/... and /inner/v1/...
"""

from collections import Counter

from starlette.applications import Starlette
from starlette.routing import Mount

from asgi_llm import (
    AuthMiddleware,
    Config,
    MetricsMiddleware,
    ProviderApp,
    RateLimitMiddleware,
    RouterMiddleware,
)
from asgi_llm.auth import hash_key
from asgi_llm.metrics import BaseExporter, RequestRecord

config = Config.from_dict({
    "models": [{"name": "mock-1", "deployments": [{"id": "mock", "provider": "mock", "model": "mock-1"}]}],
    "auth": {"api_keys": [{"id": "svc", "key_sha256": hash_key("sk-metrics-example"), "roles": ["user"]}],
             "roles": {"user": {"models": ["*"], "endpoints": ["chat", "models"]}}},
    "limits": {"storage": "memory://", "rules": [{"per": "key", "requests": "2/minute"}]},
})


class Tally(BaseExporter):
    """Counts finished requests by status, and keeps the records (an exporter needs only
    `record`; it runs on the event loop and must not block)."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.records: list[RequestRecord] = []

    def record(self, request: RequestRecord) -> None:
        self.statuses[request.status] += 1
        self.records.append(request)


def router() -> RouterMiddleware:
    return RouterMiddleware(ProviderApp(config=config), config=config)


outer_tally, inner_tally = Tally(), Tally()

outermost = MetricsMiddleware(
    AuthMiddleware(RateLimitMiddleware(router(), config=config), config=config),
    config=config, exporters=[outer_tally],
)
innermost = AuthMiddleware(
    RateLimitMiddleware(MetricsMiddleware(router(), config=config, exporters=[inner_tally]),
                        config=config),
    config=config,
)

app = Starlette(routes=[Mount("/outer", app=outermost), Mount("/inner", app=innermost)])
