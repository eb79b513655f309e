"""The router's log lines: failed attempts, failovers, requests that ran out of attempts,
cooldowns entered and left.

An operator must see an outage in the log, but an outage must not flood it: lines of one kind
for one deployment are capped per interval, and the next line that gets through says how many
were held back. Lines carry facts only (request id, deployment, attempt, status, error class
and code), never the upstream's message, which may quote the request or a credential.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from asgi_llm.errors import UpstreamError, UpstreamStatus

log = logging.getLogger("asgi_llm.routing")

MAX_KEYS = 1024  # (kind, deployment) pairs tracked; the table is cleared when full
_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def _code(error: UpstreamError) -> str:
    code = error.code or "-"
    return code if _CODE.fullmatch(code) else "other"  # an upstream's code is its own text


class RouterEvents:
    """Rate-limited WARNING/INFO lines for the router. `burst` lines per `interval_s` per
    (kind, deployment); what is held back is counted and reported with the next line."""

    def __init__(
        self, *, burst: int = 5, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = burst
        self.interval_s = interval_s
        self._clock = clock
        self._windows: dict[tuple[str, str], list[float | int]] = {}  # -> [start, sent, held]

    def _admit(self, kind: str, deployment: str) -> int | None:
        """None when the line is held back; else how many were held back before it."""
        now = self._clock()
        key = (kind, deployment)
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.interval_s:
            if window is None and len(self._windows) >= MAX_KEYS:
                self._windows.clear()
            held = int(window[2]) if window is not None else 0
            self._windows[key] = [now, 1, 0]
            return held
        if window[1] < self.burst:
            window[1] += 1
            held, window[2] = int(window[2]), 0
            return held
        window[2] += 1
        return None

    @staticmethod
    def _suffix(held: int) -> str:
        return f" ({held} similar lines held back)" if held else ""

    def attempt_failed(
        self, request_id: str, deployment: str, attempt: int, error: UpstreamError, next_step: str
    ) -> None:
        """`next_step`: what the router does now (`failover`, `retry`, `give up`)."""
        held = self._admit("attempt", deployment)
        if held is None:
            return
        status = error.status if isinstance(error, UpstreamStatus) else "-"
        log.warning(
            "request %s: attempt %d on %s failed: %s status=%s code=%s; %s%s",
            request_id,
            attempt,
            deployment,
            type(error).__name__,
            status,
            _code(error),
            next_step,
            self._suffix(held),
            extra={
                "fields": {
                    "request_id": request_id,
                    "deployment": deployment,
                    "attempt": attempt,
                    "error": type(error).__name__,
                    "status": status,
                    "code": _code(error),
                    "next": next_step,
                }
            },
        )

    def gave_up(self, request_id: str, model: str, attempts: int, error: UpstreamError) -> None:
        held = self._admit("gave_up", model)
        if held is None:
            return
        log.warning(
            "request %s: every attempt for model %s failed (%d attempts); answering %s %s%s",
            request_id,
            model,
            attempts,
            error.status,
            _code(error),
            self._suffix(held),
            extra={"fields": {"request_id": request_id, "model": model, "attempts": attempts}},
        )

    def cooldown_entered(self, deployment: str, seconds: float, *, shared: bool = False) -> None:
        held = self._admit("cooldown", deployment)
        if held is None:
            return
        origin = " (from another replica)" if shared else ""
        log.warning(
            "deployment %s cooling down for %.1fs%s%s",
            deployment,
            seconds,
            origin,
            self._suffix(held),
            extra={"fields": {"deployment": deployment, "cooldown_s": round(seconds, 3)}},
        )

    def cooldown_left(self, deployment: str) -> None:
        held = self._admit("recovered", deployment)
        if held is None:
            return
        log.info(
            "deployment %s answered again: cooldown over%s",
            deployment,
            self._suffix(held),
            extra={"fields": {"deployment": deployment}},
        )


__all__ = ["RouterEvents"]
