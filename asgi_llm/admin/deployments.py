"""`GET /admin/deployments`: the live state of this process's deployments, for operators and
the dashboard: cooldowns, in-flight calls and latency as the router tracks them, and the
backends running in their fallback mode. Per process: a fleet's replicas each answer for
their own (the ledger has the history of all of them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgi_llm.config.loader import Config
from asgi_llm.health import HealthRegistry
from asgi_llm.routing.health import CooldownTracker
from asgi_llm.routing.latency import LatencyTracker


class DeploymentsView:
    """Reads the services the router and the health registry keep; changes nothing."""

    def __init__(
        self,
        *,
        cooldowns: CooldownTracker | None = None,
        health: HealthRegistry | None = None,
        latency: LatencyTracker | None = None,
        in_flight: Callable[[], int] | None = None,
    ) -> None:
        self.cooldowns = cooldowns
        self.health = health
        self.latency = latency
        self.in_flight = in_flight

    def report(self, config: Config) -> dict[str, Any]:
        tracked = self.latency.snapshot() if self.latency is not None else {}
        rows = []
        for model in config.models:
            for deployment in model.deployments:
                stats = tracked.get(deployment.id, {})
                left = self.cooldowns.seconds_left(deployment.id) if self.cooldowns is not None else 0.0
                rows.append(
                    {
                        "id": deployment.id,
                        "model": model.name,
                        "provider": deployment.provider,
                        "upstream_model": deployment.model,
                        "cooling": left > 0,
                        "cooldown_s": round(left, 3),
                        "in_flight": int(stats.get("in_flight", 0)),
                        "latency_ewma_ms": round(stats.get("ewma_s", 0.0) * 1000, 1) if stats else None,
                        "samples": int(stats.get("samples", 0)),
                    }
                )
        return {
            "data": rows,
            "in_flight": self.in_flight() if self.in_flight is not None else None,
            "degraded": self.health.degraded() if self.health is not None else {},
        }


__all__ = ["DeploymentsView"]
