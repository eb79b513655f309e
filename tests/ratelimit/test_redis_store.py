"""RedisStore against a real Redis: the same algorithms as MemoryStore, atomic per request."""

from __future__ import annotations

import asyncio

import pytest
import redis

from asgi_llm.ratelimit.redis_store import RedisStore
from asgi_llm.ratelimit.store import (
    STRATEGIES,
    Admission,
    BudgetHold,
    Settlement,
    Slot,
    Window,
)


@pytest.fixture
async def store(redis_url, prefix):
    made = RedisStore(redis_url, route_key="{" + prefix + "}", timeout_s=5)
    yield made
    await made.aclose()


def key(prefix: str, name: str) -> str:
    return "{" + prefix + "}:" + name


def window(
    prefix: str, limit: int, *, cost: int = 1, name: str = "w", expiry_s: int = 3600, kind: str = "requests"
) -> Window:
    return Window(key(prefix, name), limit, expiry_s * 1000, cost, kind)  # type: ignore[arg-type]


async def test_limits_async_spelling_names_the_same_redis(redis_url, prefix):
    made = RedisStore("async+" + redis_url, route_key="{" + prefix + "}", timeout_s=5)
    try:
        await made.ping()
    finally:
        await made.aclose()


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_n_per_window_exact_under_200_concurrent_admissions(store, prefix, strategy):
    w = window(prefix, 50)
    decisions = await asyncio.gather(*[store.admit(Admission(f"r{i}", [w]), strategy) for i in range(200)])
    assert sum(d.allowed for d in decisions) == 50
    assert store.round_trips == 200  # one script call per admission
    refused = [d for d in decisions if not d.allowed]
    assert all(d.reason == "window" and d.retry_ms > 0 for d in refused)
    assert all(d.states[0].remaining == 0 for d in refused)


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_refused_admission_takes_nothing(store, prefix, strategy):
    roomy, tight = window(prefix, 10, name="a"), window(prefix, 2, name="b")
    allowed = [(await store.admit(Admission(f"r{i}", [roomy, tight]), strategy)).allowed for i in range(4)]
    assert allowed == [True, True, False, False]
    decision = await store.admit(Admission("x", [roomy]), strategy)
    assert decision.allowed and decision.states[0].remaining == 7


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_settlement_rewrites_the_reservation(store, prefix, strategy):
    tokens = window(prefix, 1000, cost=400, kind="tokens")
    first = await store.admit(Admission("a", [tokens]), strategy)
    assert first.allowed and first.states[0].remaining == 600
    await store.settle(Settlement("a", first.now_ms, windows=[(tokens, 30)]), strategy)
    probe = window(prefix, 1000, cost=1, kind="tokens")
    after = await store.admit(Admission("probe", [probe]), strategy)
    assert after.states[0].remaining == 1000 - 30 - 1
    excess = window(prefix, 1000, cost=10, kind="tokens")
    second = await store.admit(Admission("b", [excess]), strategy)
    await store.settle(Settlement("b", second.now_ms, windows=[(excess, 900)]), strategy)
    assert not (
        await store.admit(Admission("c", [window(prefix, 1000, cost=70, kind="tokens")]), strategy)
    ).allowed


async def test_concurrency_slots_and_budgets(store, prefix):
    slot = Slot(key(prefix, "c"), 1, 60_000)
    held = await store.admit(Admission("a", slots=[slot]), "moving-window")
    refused = await store.admit(Admission("b", slots=[slot]), "moving-window")
    assert held.allowed and (refused.allowed, refused.reason) == (False, "concurrency")
    await store.settle(Settlement("a", held.now_ms, slots=[slot]), "moving-window")
    assert (await store.admit(Admission("c", slots=[slot]), "moving-window")).allowed

    hold = BudgetHold(key(prefix, "budget"), "team-a", 1_000, held.now_ms + 60_000)
    first = await store.admit(Admission("d", budgets=[hold]), "moving-window")
    assert first.allowed
    await store.settle(Settlement("d", first.now_ms, budgets=[(hold, 1_000)]), "moving-window")
    spent = await store.admit(Admission("e", budgets=[hold]), "moving-window")
    assert (spent.allowed, spent.reason) == (False, "budget")
    assert 0 < spent.retry_ms <= 60_000
    assert await store.budget_spend(hold.key) == {"team-a": 1_000}


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_every_key_expires(store, prefix, redis_url, strategy):
    w = window(prefix, 5, expiry_s=60)
    slot = Slot(key(prefix, "c"), 5, 60_000)
    for i in range(3):
        await store.admit(Admission(f"r{i}", [w], [slot]), strategy)
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match="{" + prefix + "}*"))
        assert keys
        assert all(0 < client.pttl(k) <= 121_000 for k in keys)
    finally:
        client.close()
