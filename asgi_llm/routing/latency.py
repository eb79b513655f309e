"""LatencyTracker: peak-sensitive EWMA of each deployment's latency, with in-flight counts.

Time to first token for streams, total time for the rest. A higher sample is taken at once
(peak), a lower one blends in with a weight that decays with the time since the last sample.
The score also decays while a deployment goes unused, so a slow deployment that recovered
is probed again (and `explore` sends a small share of requests to a random candidate).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Stats:
    ewma: float = 0.0
    last: float = 0.0
    in_flight: int = 0
    samples: int = 0


class LatencyTracker:
    def __init__(self, decay_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.decay_s = decay_s
        self._clock = clock
        self._stats: dict[str, _Stats] = {}

    def _get(self, deployment_id: str) -> _Stats:
        stats = self._stats.get(deployment_id)
        if stats is None:
            stats = self._stats[deployment_id] = _Stats()
        return stats

    def started(self, deployment_id: str) -> None:
        self._get(deployment_id).in_flight += 1

    def finished(self, deployment_id: str, seconds: float | None) -> None:
        stats = self._get(deployment_id)
        stats.in_flight = max(0, stats.in_flight - 1)
        if seconds is None:
            return
        now = self._clock()
        if stats.samples == 0 or seconds > stats.ewma:
            stats.ewma = seconds
        else:
            weight = math.exp(-(now - stats.last) / self.decay_s)
            stats.ewma = stats.ewma * weight + seconds * (1 - weight)
        stats.last = now
        stats.samples += 1

    def score(self, deployment_id: str) -> float:
        """Lower is better: decayed latency times (in-flight + 1); unknown deployments score 0."""
        stats = self._stats.get(deployment_id)
        if stats is None or stats.samples == 0:
            return 0.0
        idle = self._clock() - stats.last
        return stats.ewma * math.exp(-idle / (self.decay_s * 3)) * (stats.in_flight + 1)

    def scores(self, deployment_ids: list[str]) -> dict[str, float]:
        """`score` for many deployments at one clock reading."""
        now = self._clock()
        horizon = self.decay_s * 3
        out = {}
        for deployment_id in deployment_ids:
            stats = self._stats.get(deployment_id)
            if stats is None or stats.samples == 0:
                out[deployment_id] = 0.0
            else:
                decay = math.exp(-(now - stats.last) / horizon)
                out[deployment_id] = stats.ewma * decay * (stats.in_flight + 1)
        return out

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {
            k: {"ewma_s": v.ewma, "in_flight": v.in_flight, "samples": v.samples}
            for k, v in self._stats.items()
        }

    def forget(self, keep: set[str]) -> None:
        for deployment_id in list(self._stats):
            if deployment_id not in keep:
                del self._stats[deployment_id]
