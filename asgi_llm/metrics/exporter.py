"""The exporter protocol: where the facts of finished requests go.

An exporter needs one method, `record(request)`, called once per finished LLM request with
its `RequestRecord`. It runs on the event loop in the request's own `finally`: it must not
block, must not await, and should be cheap (queue the work if it is not). An exception it
raises is logged and counted, never passed to the client.

Optional hooks, called when an exporter defines them (subclass `BaseExporter` to get no-op
defaults): `request_started()` as a request enters; `state(state)` every few seconds with
the gauges (in-flight requests, degraded backends, cooling deployments);
`config_reloaded(ok)` after each reload attempt; `async start()` / `async aclose()` on
lifespan startup and shutdown. Prometheus and StatsD are two exporters built this way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from asgi_llm.metrics.record import RequestRecord


@dataclass(frozen=True, slots=True)
class ProxyState:
    """Gauges sampled by MetricsMiddleware (per process)."""

    in_flight: int = 0
    degraded: dict[str, bool] = field(default_factory=dict)  # backend -> in fallback mode
    cooling: dict[str, bool] = field(default_factory=dict)  # deployment id -> cooling down


@runtime_checkable
class Exporter(Protocol):
    def record(self, request: RequestRecord) -> None:
        """One finished request. Never blocks, never raises into the request."""


class BaseExporter:
    """No-op defaults for the optional hooks; override what you need."""

    def record(self, request: RequestRecord) -> None:
        pass

    def request_started(self) -> None:
        pass

    def state(self, state: ProxyState) -> None:
        pass

    def config_reloaded(self, ok: bool) -> None:
        pass

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


__all__ = ["BaseExporter", "Exporter", "ProxyState"]
