"""MemoryStore's algorithms under a controlled clock (the Redis script mirrors them)."""

from __future__ import annotations

import pytest

from asgi_llm.ratelimit.memory import MemoryStore, sliding_retry
from asgi_llm.ratelimit.store import STRATEGIES, Admission, Settlement, Slot, Window


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def window(limit: int, expiry_s: int = 60, cost: int = 1, key: str = "w", kind: str = "requests") -> Window:
    return Window(key, limit, expiry_s * 1000, cost, kind)  # type: ignore[arg-type]


def admit(store: MemoryStore, strategy: str, *windows: Window, rid: str = "r", slots: tuple[Slot, ...] = ()):
    return store.admit_now(Admission(rid, list(windows), list(slots)), strategy)  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_n_per_window_exact(strategy):
    store = MemoryStore(clock=Clock())
    results = [admit(store, strategy, window(5), rid=str(i)).allowed for i in range(12)]
    assert results == [True] * 5 + [False] * 7


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_refused_admission_takes_nothing(strategy):
    store = MemoryStore(clock=Clock())
    roomy, tight = window(10, key="a"), window(2, key="b")
    assert [admit(store, strategy, roomy, tight, rid=str(i)).allowed for i in range(4)] == [
        True,
        True,
        False,
        False,
    ]
    decision = admit(store, strategy, roomy, rid="x")
    assert decision.allowed and decision.states[0].remaining == 7  # only 2 + this one taken


def test_fixed_window_resets_on_the_boundary():
    clock = Clock(1_800_000_000.0)  # a multiple of 60 s
    store = MemoryStore(clock=clock)
    assert admit(store, "fixed-window", window(2)).allowed
    clock.now += 30
    assert admit(store, "fixed-window", window(2)).allowed
    refused = admit(store, "fixed-window", window(2))
    assert not refused.allowed and refused.retry_ms == 30_000
    clock.now += 30
    assert admit(store, "fixed-window", window(2)).allowed


def test_sliding_window_weighs_the_previous_window():
    clock = Clock(1_800_000_000.0)
    store = MemoryStore(clock=clock)
    for i in range(10):
        assert admit(store, "sliding-window-counter", window(10), rid=str(i)).allowed
    clock.now += 60 + 15  # a quarter into the next window: 10 * 0.75 = 7.5 -> 7 still count
    states = [admit(store, "sliding-window-counter", window(10), rid=f"n{i}") for i in range(4)]
    assert [s.allowed for s in states] == [True, True, True, False]
    assert states[-1].retry_ms > 0


def test_moving_window_frees_the_oldest_first():
    clock = Clock()
    store = MemoryStore(clock=clock)
    assert admit(store, "moving-window", window(2), rid="a").allowed
    clock.now += 20
    assert admit(store, "moving-window", window(2), rid="b").allowed
    refused = admit(store, "moving-window", window(2), rid="c")
    assert not refused.allowed and refused.retry_ms == 40_000  # when "a" leaves the window
    clock.now += 40
    assert admit(store, "moving-window", window(2), rid="c").allowed


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_settlement_rewrites_the_reservation(strategy):
    store = MemoryStore(clock=Clock())
    tokens = window(1000, cost=400, kind="tokens")
    first = admit(store, strategy, tokens, rid="a")
    assert first.allowed and first.states[0].remaining == 600
    store.settle_now(Settlement("a", first.now_ms, windows=[(tokens, 30)]), strategy)
    after = admit(store, strategy, window(1000, cost=1, kind="tokens"), rid="probe")
    assert after.states[0].remaining == 1000 - 30 - 1


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_settlement_charges_usage_beyond_the_reservation(strategy):
    store = MemoryStore(clock=Clock())
    tokens = window(1000, cost=100, kind="tokens")
    first = admit(store, strategy, tokens, rid="a")
    store.settle_now(Settlement("a", first.now_ms, windows=[(tokens, 700)]), strategy)
    assert not admit(store, strategy, window(1000, cost=301, kind="tokens"), rid="b").allowed
    assert admit(store, strategy, window(1000, cost=300, kind="tokens"), rid="c").allowed


def test_concurrency_slots_are_released_and_leases_expire():
    clock = Clock()
    store = MemoryStore(clock=clock)
    slot = Slot("c", 1, 5_000)
    held = admit(store, "moving-window", slots=(slot,), rid="a")
    assert held.allowed
    refused = admit(store, "moving-window", slots=(slot,), rid="b")
    assert not refused.allowed and refused.reason == "concurrency"
    store.settle_now(Settlement("a", held.now_ms, slots=[slot]), "moving-window")
    assert admit(store, "moving-window", slots=(slot,), rid="c").allowed
    clock.now += 6  # "c" never settled (its replica died): the lease runs out
    assert admit(store, "moving-window", slots=(slot,), rid="d").allowed


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_state_of_ten_thousand_keys_is_swept(strategy):
    clock = Clock()
    store = MemoryStore(clock=clock)
    for i in range(10_000):
        admit(store, strategy, window(5, key=f"k{i}"), rid=str(i))
    clock.now += 200
    for i in range(2048):  # enough admissions to trigger the sweeps
        admit(store, strategy, window(5, key="again"), rid=f"x{i}")
    assert len(store._counters) + len(store._moving) <= 3


def test_sliding_retry_is_when_the_request_first_fits():
    exp = 60_000
    # previous 10, current 0, limit 10: fits once floor(10 * (exp - e) / exp) <= 9.
    wait = sliding_retry(exp, 0, 10, 0, 10, 1)
    assert wait > 0
    elapsed = wait
    assert 10 * (exp - elapsed) // exp + 1 <= 10
    assert 10 * (exp - (elapsed - 2)) // exp + 1 > 10
