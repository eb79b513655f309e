"""What the limiter asks of a counter store, and the store interface itself.

One admission is every check of one request (all windows of all rules, the concurrency
slots, the budgets) and it is decided as a whole: either everything is taken or nothing is.
That is the unit a store must make atomic; for Redis it is one script call, so one round
trip, whatever the number of rules and windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

Strategy = Literal["moving-window", "fixed-window", "sliding-window-counter"]
STRATEGIES: tuple[Strategy, ...] = ("moving-window", "fixed-window", "sliding-window-counter")


class StoreUnavailable(Exception):
    """The shared store did not answer in time (or refused): the limiter decides what next."""


@dataclass(frozen=True, slots=True)
class Window:
    """One window of one rule for one identity: at most `limit` units per `expiry_ms`."""

    key: str
    limit: int
    expiry_ms: int
    cost: int
    kind: Literal["requests", "tokens"]


@dataclass(frozen=True, slots=True)
class Slot:
    """A concurrency limit: a lease held while the request is in flight.

    Leases expire after `lease_ms`, so a replica that dies mid-request cannot hold a slot
    for ever.
    """

    key: str
    limit: int
    lease_ms: int


@dataclass(frozen=True, slots=True)
class BudgetHold:
    """A spend cap: `spent < limit_micros` (micro-USD) in the period ending at `ends_at_ms`."""

    key: str  # one hash per (scope, period)
    member: str  # the key id / tenant inside it
    limit_micros: int
    ends_at_ms: int


@dataclass(slots=True)
class Admission:
    id: str
    windows: list[Window] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    budgets: list[BudgetHold] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WindowState:
    remaining: int
    reset_ms: int  # until the window next frees room (or ends)


@dataclass(slots=True)
class Decision:
    allowed: bool
    now_ms: int  # the store's clock at admission: settlement finds the reservation by it
    states: list[WindowState]  # one per Admission.windows, after the take when allowed
    reason: Literal["window", "concurrency", "budget"] | None = None
    failed: int = -1  # index of the first failing check within its kind
    retry_ms: int = 0


@dataclass(slots=True)
class Settlement:
    """What to reconcile when the response ended: tokens, slots, spend."""

    id: str
    at_ms: int  # Decision.now_ms
    windows: list[tuple[Window, int]] = field(default_factory=list)  # (reserved window, actual)
    slots: list[Slot] = field(default_factory=list)
    budgets: list[tuple[BudgetHold, int]] = field(default_factory=list)  # micro-USD to charge

    def __bool__(self) -> bool:
        return bool(self.windows or self.slots or self.budgets)


class CounterStore(Protocol):
    """Atomic check-and-take over many counters. Implementations: memory, Redis."""

    async def admit(self, admission: Admission, strategy: Strategy) -> Decision: ...

    async def settle(self, settlement: Settlement, strategy: Strategy) -> None: ...

    async def budget_spend(self, key: str) -> dict[str, int]: ...

    async def aclose(self) -> None: ...


__all__ = [
    "STRATEGIES",
    "Admission",
    "BudgetHold",
    "CounterStore",
    "Decision",
    "Settlement",
    "Slot",
    "StoreUnavailable",
    "Strategy",
    "Window",
    "WindowState",
]
