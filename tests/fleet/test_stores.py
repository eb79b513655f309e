"""The stores whose Redis keys span slots, on a real cluster and a real Sentinel set: the exact
cache (entries over every shard: a purge finds and removes them all), the single-flight lease,
and the response store (a hash tag per tenant)."""

from __future__ import annotations

import uuid

import pytest

from asgi_llm.cache.store import open_store
from asgi_llm.response_store import RedisResponseStore
from tests.response_store.conftest import make_record


@pytest.fixture(params=["redis_cluster", "redis_sentinel"])
def url(request) -> str:
    return str(request.getfixturevalue(request.param).url)


async def test_cache_entries_on_every_shard_are_read_and_purged(url):
    store = open_store(url, max_entries=100, max_bytes=1 << 20, timeout_s=1.0)
    prefix = f"purge-{uuid.uuid4().hex[:8]}"
    try:
        keys = [f"{prefix}:e:{ns:02x}:{n:04x}" for ns in range(2) for n in range(40)]  # many slots
        for key in keys:
            await store.set(key, key.encode(), ttl_s=60)
        assert [await store.get(key) for key in keys[:3]] == [key.encode() for key in keys[:3]]
        assert await store.purge(f"{prefix}:e:00:*") == 40
        assert await store.get(keys[0]) is None and await store.get(keys[40]) == keys[40].encode()
        assert await store.purge(f"{prefix}:e:*") == 40
    finally:
        await store.aclose()


async def test_the_single_flight_lease_is_one_holders(url):
    store = open_store(url, max_entries=100, max_bytes=1 << 20, timeout_s=1.0)
    key = f"lease-{uuid.uuid4().hex[:8]}"
    try:
        assert await store.try_lock(key, "a", 5)  # type: ignore[attr-defined]
        assert not await store.try_lock(key, "b", 5)  # type: ignore[attr-defined]
        await store.unlock(key, "b")  # type: ignore[attr-defined]  # not b's: kept
        assert not await store.try_lock(key, "b", 5)  # type: ignore[attr-defined]
        await store.unlock(key, "a")  # type: ignore[attr-defined]
        assert await store.try_lock(key, "b", 5)  # type: ignore[attr-defined]
    finally:
        await store.aclose()


async def test_stored_responses_round_trip(url):
    store = RedisResponseStore(url, prefix=f"resp-{uuid.uuid4().hex[:8]}", timeout_s=1.0)
    try:
        for tenant in ("tenant:a", "tenant:b", "tenant:c"):
            record = make_record(namespace=tenant)
            await store.put(record, ttl_s=60)
            assert await store.get(tenant, record.id) == record
            assert await store.delete(tenant, record.id)
            assert await store.get(tenant, record.id) is None
    finally:
        await store.aclose()
