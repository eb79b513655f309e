"""Breaker: a shared backend (Redis) that failed is left alone for a pause, so a dead one
costs one timeout per pause and replica, not one per request; the start and the end of an
outage are told once each. The limiter, the cache and the key store each keep one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

PAUSE_S = 1.0


class Breaker:
    """`allows()` before a call, `failed(exc)` / `succeeded()` after it.

    While down, the backend is tried again once `pause_s` has passed: by every caller from
    then on, or (`single_probe`) by one caller per pause while the others answer at once.
    `on_down(exc)` and `on_up(seconds_down)` run once per outage (its log lines).
    """

    def __init__(
        self,
        *,
        pause_s: float = PAUSE_S,
        single_probe: bool = False,
        on_down: Callable[[BaseException], None] | None = None,
        on_up: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pause_s = pause_s
        self.single_probe = single_probe
        self._on_down = on_down
        self._on_up = on_up
        self._clock = clock
        self.since: float | None = None  # when the outage began; None while up
        self.checked_at = float("-inf")  # when the backend last answered or failed
        self.failures = 0
        self._retry_at = 0.0

    @property
    def down(self) -> bool:
        return self.since is not None

    def allows(self) -> bool:
        """Up, or down and due for another try."""
        if self.since is None:
            return True
        now = self._clock()
        if now < self._retry_at:
            return False
        if self.single_probe:
            self._retry_at = now + self.pause_s
        return True

    def failed(self, exc: BaseException) -> None:
        now = self._clock()
        self.failures += 1
        self.checked_at, self._retry_at = now, now + self.pause_s
        if self.since is None:
            self.since = now
            if self._on_down is not None:
                self._on_down(exc)

    def succeeded(self) -> None:
        now = self._clock()
        self.checked_at = now
        if self.since is not None:
            since, self.since = self.since, None
            if self._on_up is not None:
                self._on_up(now - since)


__all__ = ["PAUSE_S", "Breaker"]
