"""The stores: bounded memory LRU, and real Redis (database 2, a prefix per test)."""

from __future__ import annotations

import asyncio

import pytest

from asgi_llm.cache.store import MemoryStore, RedisStore, open_store


async def test_memory_store_is_bounded_by_entries_with_lru_eviction():
    store = MemoryStore(max_entries=3, max_bytes=1 << 20)
    for key in "abc":
        await store.set(key, key.encode(), 60)
    assert await store.get("a") == b"a"  # a is now the most recently used
    await store.set("d", b"d", 60)
    assert await store.get("b") is None and await store.get("a") == b"a"
    assert len(store) == 3
    await store.aclose()


async def test_memory_store_is_bounded_by_bytes():
    store = MemoryStore(max_entries=100, max_bytes=1000)
    for i in range(10):
        await store.set(str(i), b"x" * 300, 60)
    assert store.size_bytes <= 1000 and len(store) == 3
    await store.set("huge", b"x" * 2000, 60)  # larger than the whole cache: not stored
    assert await store.get("huge") is None
    await store.aclose()


async def test_memory_store_ttl_and_purge_patterns():
    store = MemoryStore(max_entries=100, max_bytes=1 << 20)
    await store.set("p:e:aa:11:x", b"1", 60)
    await store.set("p:e:aa:22:y", b"2", 60)
    await store.set("p:e:bb:11:z", b"3", 60)
    await store.set("p:e:cc:33:t", b"4", 0.1)
    assert await store.purge("p:e:*:11:*") == 2
    assert await store.purge("p:e:aa:*:*") == 1
    await asyncio.sleep(0.2)  # its 0.1 s TTL runs out
    assert await store.get("p:e:cc:33:t") is None and len(store) == 0
    await store.aclose()


async def test_memory_store_expiry_schedules_no_timers():
    """Expiry is checked on read: a full cache adds nothing to the event loop or the GC."""
    now = [100.0]
    store = MemoryStore(max_entries=1000, max_bytes=1 << 20, clock=lambda: now[0])
    loop = asyncio.get_running_loop()
    scheduled = len(getattr(loop, "_scheduled", ()))
    for i in range(500):
        await store.set(f"k{i}", b"v", 10)
    assert len(getattr(loop, "_scheduled", ())) == scheduled
    assert await store.get("k1") == b"v"
    now[0] += 10
    assert await store.get("k1") is None and len(store) == 499 and store.size_bytes == 499
    await store.aclose()


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown cache backend"):
        open_store("memcached://x", max_entries=1, max_bytes=1024, timeout_s=1)


async def test_redis_store_get_set_ttl_purge_and_lock(redis_url):
    url, prefix = redis_url
    store = RedisStore(url, timeout_s=1.0)
    try:
        await store.set(f"{prefix}:e:aa:11:x", b"\x00binary\xff", 60)
        await store.set(f"{prefix}:e:bb:11:y", b"2", 0.15)
        assert await store.get(f"{prefix}:e:aa:11:x") == b"\x00binary\xff"
        await asyncio.sleep(0.3)  # its 0.15 s TTL runs out
        assert await store.get(f"{prefix}:e:bb:11:y") is None
        assert await store.purge(f"{prefix}:e:*:11:*") == 1
        assert await store.try_lock(f"{prefix}:l:k", "me", 5)
        assert not await store.try_lock(f"{prefix}:l:k", "you", 5)
        await store.unlock(f"{prefix}:l:k", "you")  # not the holder: no effect
        assert not await store.try_lock(f"{prefix}:l:k", "you", 5)
        await store.unlock(f"{prefix}:l:k", "me")
        assert await store.try_lock(f"{prefix}:l:k", "you", 5)
    finally:
        await store.aclose()
