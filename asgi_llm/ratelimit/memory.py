"""MemoryStore: the counter store of one process (`memory://`, and the degraded fallback).

It runs the same algorithms as the Redis script (`scripts.py`), line for line, so a rule
means the same thing on one process and on a fleet. It is atomic because `admit` and
`settle` never await: on one event loop nothing interleaves with them.

Why not `limits`' own MemoryStorage: it charges a moving window one list entry per unit of
cost (a 4,000-token reservation is 4,000 objects), cannot refund a reservation, checks the
windows of a rule one call at a time, and sweeps expiries through `asyncio.to_thread`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from asgi_llm.ratelimit.store import (
    Admission,
    Decision,
    Settlement,
    Strategy,
    Window,
    WindowState,
)

CONCURRENCY_RETRY_MS = 1000
SWEEP_EVERY = 1024  # admissions between two sweeps of expired state (bounded memory, L9)


@dataclass(slots=True)
class _Moving:
    """One moving window: (time, id) in arrival order and each id's amount.

    Plain ints and strings only, so the garbage collector stops tracking them: a window at
    1,000 requests per second holds 60k entries a minute, and as objects of their own they
    made every full collection walk them (measured: p99 185 ms at 16 connections after a
    minute, 18 ms without them)."""

    entries: deque[tuple[int, str]] = field(default_factory=deque)
    amounts: dict[str, int] = field(default_factory=dict)
    total: int = 0
    expiry_ms: int = 0

    def add(self, rid: str, at_ms: int, amount: int) -> None:
        self.entries.append((at_ms, rid))
        self.amounts[rid] = amount
        self.total += amount

    def prune(self, now: int) -> None:
        cutoff = now - self.expiry_ms
        entries, amounts = self.entries, self.amounts
        while entries and entries[0][0] <= cutoff:
            _, rid = entries.popleft()
            self.total -= amounts.pop(rid, 0)


class MemoryStore:
    """Counters in a dict; `clock` (seconds) is injectable for tests."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counters: dict[str, list[int]] = {}  # key -> [count, expires_at_ms]
        self._moving: dict[str, _Moving] = {}
        self._slots: dict[str, dict[str, int]] = {}  # key -> {id: lease_until_ms}
        self._budgets: dict[str, tuple[dict[str, int], int]] = {}  # key -> ({member: µUSD}, exp)
        self._admissions = 0

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- the store interface -------------------------------------------------------------
    async def admit(self, admission: Admission, strategy: Strategy) -> Decision:
        return self.admit_now(admission, strategy)

    async def settle(self, settlement: Settlement, strategy: Strategy) -> None:
        self.settle_now(settlement, strategy)

    async def budget_spend(self, key: str) -> dict[str, int]:
        found = self._budgets.get(key)
        if found is None or found[1] <= self.now_ms():
            return {}
        return dict(found[0])

    async def aclose(self) -> None:
        pass

    # -- synchronous core (atomic on the event loop) ------------------------------------
    def admit_now(self, admission: Admission, strategy: Strategy) -> Decision:
        now = self.now_ms()
        self._admissions += 1
        if self._admissions % SWEEP_EVERY == 0:
            self._sweep(now)
        used = [self._used(w, strategy, now) for w in admission.windows]
        for index, hold in enumerate(admission.budgets):
            if self._spent(hold.key, hold.member, now) >= hold.limit_micros:
                states = [
                    self._state(w, u, strategy, now, taken=False)
                    for w, u in zip(admission.windows, used, strict=True)
                ]
                return Decision(False, now, states, "budget", index, max(1, hold.ends_at_ms - now))
        failing = [
            i for i, (w, u) in enumerate(zip(admission.windows, used, strict=True)) if u + w.cost > w.limit
        ]
        slot_fail = (
            next((i for i, s in enumerate(admission.slots) if len(self._leases(s.key, now)) >= s.limit), -1)
            if admission.slots
            else -1
        )
        if failing or slot_fail >= 0:
            states = [
                self._state(w, u, strategy, now, taken=False)
                for w, u in zip(admission.windows, used, strict=True)
            ]
            if failing:
                retry = max(self._retry(admission.windows[i], used[i], strategy, now) for i in failing)
                return Decision(False, now, states, "window", failing[0], retry)
            return Decision(False, now, states, "concurrency", slot_fail, CONCURRENCY_RETRY_MS)
        for window in admission.windows:
            self._take(window, admission.id, strategy, now)
        for slot in admission.slots:
            self._slots.setdefault(slot.key, {})[admission.id] = now + slot.lease_ms
        states = [
            self._state(w, u, strategy, now, taken=True) for w, u in zip(admission.windows, used, strict=True)
        ]
        return Decision(True, now, states)

    def settle_now(self, settlement: Settlement, strategy: Strategy) -> None:
        now = self.now_ms()
        for window, actual in settlement.windows:
            self._adjust(window, settlement.id, settlement.at_ms, actual, strategy, now)
        for slot in settlement.slots:
            leases = self._slots.get(slot.key)
            if leases is not None:
                leases.pop(settlement.id, None)
        for hold, micros in settlement.budgets:
            if micros <= 0:
                continue
            spent, _ = self._budgets.get(hold.key, ({}, 0))
            spent[hold.member] = spent.get(hold.member, 0) + micros
            self._budgets[hold.key] = (spent, hold.ends_at_ms + 86_400_000)

    # -- windows -------------------------------------------------------------------------
    def _count(self, key: str, now: int) -> int:
        found = self._counters.get(key)
        if found is None or found[1] <= now:
            return 0
        return found[0]

    def _incr(self, key: str, amount: int, ttl_ms: int, now: int) -> None:
        found = self._counters.get(key)
        if found is None or found[1] <= now:
            self._counters[key] = [amount, now + ttl_ms]
        else:
            found[0] += amount
            found[1] = now + ttl_ms

    def _used(self, w: Window, strategy: Strategy, now: int) -> int:
        if strategy == "moving-window":  # the default: first
            moving = self._moving.get(w.key)
            if moving is None:
                return 0
            moving.expiry_ms = w.expiry_ms
            moving.prune(now)
            return moving.total
        idx, exp = now // w.expiry_ms, w.expiry_ms
        if strategy == "fixed-window":
            return self._count(f"{w.key}:{idx}", now)
        elapsed = now - idx * exp  # sliding-window-counter
        previous = self._count(f"{w.key}:{idx - 1}", now)
        return previous * (exp - elapsed) // exp + self._count(f"{w.key}:{idx}", now)

    def _take(self, w: Window, rid: str, strategy: Strategy, now: int) -> None:
        exp = w.expiry_ms
        if strategy == "moving-window":
            moving = self._moving.get(w.key)
            if moving is None:  # not setdefault: that would build one per request
                moving = self._moving[w.key] = _Moving(expiry_ms=exp)
            moving.add(rid, now, w.cost)
            return
        idx = now // exp
        # Kept to the end of the next window: the sliding counter weighs it there.
        self._incr(f"{w.key}:{idx}", w.cost, (idx + 2) * exp - now, now)

    def _state(self, w: Window, used: int, strategy: Strategy, now: int, *, taken: bool) -> WindowState:
        after = used + (w.cost if taken else 0)
        exp = w.expiry_ms
        if strategy == "moving-window":
            moving = self._moving.get(w.key)
            reset = moving.entries[0][0] + exp - now if moving and moving.entries else exp
        else:
            reset = (now // exp + 1) * exp - now
        return WindowState(max(0, w.limit - after), reset)

    def _retry(self, w: Window, used: int, strategy: Strategy, now: int) -> int:
        exp = w.expiry_ms
        if strategy == "fixed-window":
            return (now // exp + 1) * exp - now
        if strategy == "sliding-window-counter":
            idx = now // exp
            elapsed = now - idx * exp
            current = self._count(f"{w.key}:{idx}", now)
            previous = self._count(f"{w.key}:{idx - 1}", now)
            return sliding_retry(exp, elapsed, previous, current, w.limit, w.cost)
        moving = self._moving.get(w.key)
        if moving is None:
            return exp
        freed = 0
        for at_ms, rid in moving.entries:
            freed += moving.amounts.get(rid, 0)
            if used - freed + w.cost <= w.limit:
                return max(1, at_ms + exp - now)
        return exp

    def _adjust(self, w: Window, rid: str, at: int, actual: int, strategy: Strategy, now: int) -> None:
        delta = actual - w.cost
        exp = w.expiry_ms
        if strategy == "moving-window":
            moving = self._moving.get(w.key)
            if moving is not None:
                moving.prune(now)
                held = moving.amounts.get(rid)
                if held is not None:  # the reservation is still in the window: rewrite it
                    moving.total += actual - held
                    moving.amounts[rid] = actual
                    return
            if delta > 0:  # it left the window already: only the excess is charged, now
                moving = self._moving.setdefault(w.key, _Moving(expiry_ms=exp))
                moving.add(rid + "+", now, delta)
            return
        if delta > 0:
            idx = now // exp
            self._incr(f"{w.key}:{idx}", delta, (idx + 2) * exp - now, now)
        elif delta < 0:
            found = self._counters.get(f"{w.key}:{at // exp}")
            if found is not None and found[1] > now:
                found[0] = max(0, found[0] + delta)

    # -- slots and budgets ---------------------------------------------------------------
    def _leases(self, key: str, now: int) -> dict[str, int]:
        leases = self._slots.get(key)
        if leases is None:
            return {}
        for rid in [r for r, until in leases.items() if until <= now]:
            del leases[rid]
        return leases

    def _spent(self, key: str, member: str, now: int) -> int:
        found = self._budgets.get(key)
        if found is None or found[1] <= now:
            return 0
        return found[0].get(member, 0)

    def _sweep(self, now: int) -> None:
        for key in [k for k, (_, exp) in self._counters.items() if exp <= now]:
            del self._counters[key]
        for key, moving in list(self._moving.items()):
            moving.prune(now)
            if not moving.entries:
                del self._moving[key]
        for key in list(self._slots):
            if not self._leases(key, now):
                del self._slots[key]
        for key in [k for k, (_, exp) in self._budgets.items() if exp <= now]:
            del self._budgets[key]


def sliding_retry(exp: int, elapsed: int, previous: int, current: int, limit: int, cost: int) -> int:
    """Milliseconds until floor(previous * (exp - elapsed) / exp) + current + cost <= limit."""
    room = limit - cost - current
    if room >= 0:
        if previous == 0:
            return 1
        # previous * (exp - e) < (room + 1) * exp  <=>  e > exp - (room + 1) * exp / previous
        needed = exp - (room + 1) * exp // previous + 1
        return max(1, needed - elapsed)
    # Not in this window: in the next one, this window's count becomes the weighed one.
    rest = exp - elapsed
    if current == 0:
        return max(1, rest)
    needed = exp - (limit - cost + 1) * exp // current + 1
    return max(1, rest + max(0, needed))


__all__ = ["MemoryStore", "sliding_retry"]
