"""The in-process store: namespaces, ids, lifetimes and its two bounds."""

from __future__ import annotations

import logging

import pytest

from asgi_llm.response_store import MemoryResponseStore
from tests.response_store.conftest import RecordFactory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(
    max_entries: int = 100, max_bytes: int = 10_000_000, clock: Clock | None = None
) -> MemoryResponseStore:
    return MemoryResponseStore(max_entries=max_entries, max_bytes=max_bytes, clock=clock or Clock())


async def test_round_trip_returns_a_copy(record: RecordFactory) -> None:
    memory = store()
    original = record()
    await memory.put(original, ttl_s=60)
    found = await memory.get("tenant:team-a", "resp_0123abcd")
    assert found == original
    assert found is not None
    found.response["status"] = "tampered"
    found.input_items.clear()
    assert await memory.get("tenant:team-a", "resp_0123abcd") == original


async def test_another_namespace_sees_nothing_and_deletes_nothing(record: RecordFactory) -> None:
    memory = store()
    await memory.put(record(namespace="tenant:team-a"), ttl_s=60)
    assert await memory.get("tenant:team-b", "resp_0123abcd") is None
    assert await memory.get("global", "resp_0123abcd") is None
    assert await memory.delete("tenant:team-b", "resp_0123abcd") is False
    assert await memory.get("tenant:team-a", "resp_0123abcd") is not None
    # The same id in two namespaces is two records.
    await memory.put(record(namespace="tenant:team-b", deployment="other"), ttl_s=60)
    a = await memory.get("tenant:team-a", "resp_0123abcd")
    b = await memory.get("tenant:team-b", "resp_0123abcd")
    assert a is not None and b is not None
    assert (a.deployment, b.deployment) == ("openai-mini", "other")
    assert await memory.delete("tenant:team-a", "resp_0123abcd") is True
    assert await memory.get("tenant:team-a", "resp_0123abcd") is None
    assert await memory.get("tenant:team-b", "resp_0123abcd") == b
    assert await memory.delete("tenant:team-a", "resp_0123abcd") is False


async def test_invalid_ids_are_missing_on_read_and_refused_on_write(record: RecordFactory) -> None:
    memory = store()
    await memory.put(record(), ttl_s=60)
    assert await memory.get("tenant:team-a", "resp_0123abcd\n") is None
    assert await memory.get("tenant:team-a", "*") is None
    assert await memory.delete("tenant:team-a", "x" * 129) is False
    with pytest.raises(ValueError, match="invalid response id"):
        await memory.put(record(response_id="resp:1"), ttl_s=60)
    with pytest.raises(ValueError, match="namespace"):
        await memory.put(record(namespace=""), ttl_s=60)
    with pytest.raises(ValueError, match="ttl_s"):
        await memory.put(record(), ttl_s=0)
    assert len(memory) == 1


async def test_a_record_expires_at_its_ttl(record: RecordFactory) -> None:
    clock = Clock()
    memory = store(clock=clock)
    await memory.put(record(), ttl_s=30)
    clock.now += 29.9
    assert await memory.get("tenant:team-a", "resp_0123abcd") is not None
    clock.now += 0.1
    assert await memory.get("tenant:team-a", "resp_0123abcd") is None
    assert (len(memory), memory.size_bytes) == (0, 0)
    await memory.put(record(), ttl_s=30)
    clock.now += 31
    assert await memory.delete("tenant:team-a", "resp_0123abcd") is False


async def test_entries_are_bounded_least_recently_used_first(record: RecordFactory) -> None:
    memory = store(max_entries=3)
    for n in range(3):
        await memory.put(record(response_id=f"resp_{n}"), ttl_s=60)
    assert await memory.get("tenant:team-a", "resp_0") is not None  # now the most recent
    await memory.put(record(response_id="resp_3"), ttl_s=60)
    assert len(memory) == 3
    assert await memory.get("tenant:team-a", "resp_1") is None
    for kept in ("resp_0", "resp_2", "resp_3"):
        assert await memory.get("tenant:team-a", kept) is not None


async def test_bytes_are_bounded_and_counted_once_per_record(record: RecordFactory) -> None:
    size = len(record(response_id="resp_0").to_json())
    memory = store(max_bytes=size * 2 + size // 2)
    await memory.put(record(response_id="resp_0"), ttl_s=60)
    await memory.put(record(response_id="resp_0"), ttl_s=60)  # a rewrite replaces, not adds
    assert memory.size_bytes == size
    await memory.put(record(response_id="resp_1"), ttl_s=60)
    await memory.put(record(response_id="resp_2"), ttl_s=60)
    assert (len(memory), memory.size_bytes) == (2, size * 2)
    assert await memory.get("tenant:team-a", "resp_0") is None
    assert await memory.get("tenant:team-a", "resp_2") is not None


async def test_a_record_larger_than_the_budget_is_not_kept(
    record: RecordFactory, caplog: pytest.LogCaptureFixture
) -> None:
    memory = store(max_bytes=2048)
    await memory.put(record(response_id="resp_small"), ttl_s=60)
    big = record(response_id="resp_big", input_items=[{"role": "user", "content": "x" * 4096}])
    with caplog.at_level(logging.WARNING, logger="asgi_llm.response_store"):
        await memory.put(big, ttl_s=60)
    assert await memory.get("tenant:team-a", "resp_big") is None
    assert await memory.get("tenant:team-a", "resp_small") is not None  # nothing evicted for it
    assert "resp_big not stored" in caplog.text


async def test_aclose_empties_the_store(record: RecordFactory) -> None:
    memory = store()
    await memory.put(record(), ttl_s=60)
    await memory.aclose()
    assert (len(memory), memory.size_bytes) == (0, 0)
    assert await memory.get("tenant:team-a", "resp_0123abcd") is None


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MemoryResponseStore(max_entries=0, max_bytes=1024)
