"""CooldownTracker: a deployment that keeps failing is skipped for a while.

The state is per process; with `routing.redis_url`, routing/fleet.py shares the decisions
(a cooldown started, a deployment recovered) with the other replicas.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from asgi_llm.config.schema import Cooldown, Deployment


@dataclass(slots=True)
class _Health:
    failures: deque[float] = field(default_factory=deque)
    cooling_until: float = 0.0
    strikes: int = 0  # cooldowns in a row without a success in between
    last_failure: float = 0.0


class CooldownTracker:
    """`failures` within `window_s` cool a deployment for `seconds`, doubling on each repeat
    up to `max_seconds`. A 429's retry-after cools it for that long instead."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._health: dict[str, _Health] = {}
        self._all_back_at = 0.0  # no deployment is cooling after this time

    def _get(self, deployment_id: str) -> _Health:
        health = self._health.get(deployment_id)
        if health is None:
            health = self._health[deployment_id] = _Health()
        return health

    def cooling(self, deployment_id: str) -> bool:
        health = self._health.get(deployment_id)
        return health is not None and health.cooling_until > self._clock()

    def seconds_left(self, deployment_id: str) -> float:
        """How long a deployment stays cooling (0 when it is not): for the admin view."""
        health = self._health.get(deployment_id)
        return 0.0 if health is None else max(0.0, health.cooling_until - self._clock())

    def split(self, deployments: Sequence[Deployment]) -> tuple[list[Deployment], list[Deployment]]:
        """(healthy, cooling) in the given order."""
        now = self._clock()
        if now >= self._all_back_at:
            return list(deployments), []
        healthy: list[Deployment] = []
        cooling: list[Deployment] = []
        health = self._health
        for deployment in deployments:
            state = health.get(deployment.id)
            (cooling if state is not None and state.cooling_until > now else healthy).append(deployment)
        return healthy, cooling

    def soonest_back(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        """When every deployment is cooling, the one whose cooldown ends first goes first."""
        return sorted(deployments, key=lambda d: self._get(d.id).cooling_until)

    def failure(self, deployment_id: str, policy: Cooldown, retry_after: float | None = None) -> float | None:
        """Count one failure; returns the seconds of a cooldown this starts, else None."""
        now = self._clock()
        health = self._get(deployment_id)
        health.last_failure = now
        if retry_after is not None and retry_after > 0:
            seconds = min(retry_after, policy.max_seconds)
            if now + seconds <= health.cooling_until:
                return None
            self.cool_for(deployment_id, seconds)
            return seconds
        health.failures.append(now)
        while health.failures and health.failures[0] < now - policy.window_s:
            health.failures.popleft()
        if len(health.failures) < policy.failures:
            return None
        health.strikes += 1
        seconds = min(policy.seconds * 2 ** (health.strikes - 1), policy.max_seconds)
        health.failures.clear()
        self.cool_for(deployment_id, seconds)
        return seconds

    def cool_for(self, deployment_id: str, seconds: float) -> None:
        """Skip a deployment for `seconds` from now (or longer, if it already is)."""
        health = self._get(deployment_id)
        health.cooling_until = max(health.cooling_until, self._clock() + seconds)
        self._all_back_at = max(self._all_back_at, health.cooling_until)

    def success(self, deployment_id: str) -> bool:
        """A good answer clears the history; True when this ends a cooldown."""
        health = self._health.get(deployment_id)
        if health is None:
            return False
        ended = health.cooling_until > 0.0
        health.failures.clear()
        health.strikes = 0
        health.cooling_until = 0.0
        return ended

    def forget(self, keep: set[str]) -> None:
        """Drop deployments no longer in the config (bounded state across reloads)."""
        for deployment_id in list(self._health):
            if deployment_id not in keep:
                del self._health[deployment_id]
