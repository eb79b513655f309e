"""Which shared backends are down: one registry, written by the layers that own a backend,
read by the metrics gauges (`asgi_llm_backend_degraded`) and by `/readyz`.

A layer registers a probe when it is built; nobody goes looking for layers. `build_app` hands
every layer the same registry; a layer built alone gets its own (so its probe is simply not
seen by a metrics layer that was given another one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# Whether the backend is down now; None: the current config does not use it.
DegradedProbe = Callable[[], bool | None]
# An active check for /readyz (a PING when nothing was heard lately): True when reachable;
# None when the current config does not use the backend.
ReadyCheck = Callable[[], Awaitable[bool | None]]


@dataclass(frozen=True, slots=True)
class Backend:
    name: str  # the metrics label (`backend="cache"`)
    degraded: DegradedProbe
    ready_name: str | None = None  # what /readyz lists when `check` fails (`key_store`)
    check: ReadyCheck | None = None


class HealthRegistry:
    def __init__(self) -> None:
        self._backends: dict[str, Backend] = {}

    def register(
        self,
        name: str,
        degraded: DegradedProbe,
        *,
        ready_name: str | None = None,
        check: ReadyCheck | None = None,
    ) -> None:
        """One backend per name: a second registration under a name replaces the first."""
        self._backends[name] = Backend(name, degraded, ready_name, check)

    def degraded(self) -> dict[str, bool]:
        """Backend name -> down, for the backends the current config uses."""
        states: dict[str, bool] = {}
        for backend in self._backends.values():
            down = backend.degraded()
            if down is not None:
                states[backend.name] = down
        return states

    async def not_ready(self) -> list[str]:
        """What /readyz lists as degraded: backends whose active check fails now."""
        names = []
        for backend in self._backends.values():
            if backend.check is not None and await backend.check() is False:
                names.append(backend.ready_name or backend.name)
        return sorted(names)


__all__ = ["Backend", "HealthRegistry"]
