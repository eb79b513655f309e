"""The Redis store against the real Redis (db 5, a prefix per test), and with Redis gone."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
import redis

from asgi_llm.breaker import PAUSE_S
from asgi_llm.response_store import RedisResponseStore, ResponseStoreUnavailable
from asgi_llm.response_store.redis import namespace_digest, record_key
from tests.conftest import REDIS_HOST, REDIS_PORT
from tests.fakes.faultproxy import FaultProxy
from tests.harness import free_port
from tests.response_store.conftest import RecordFactory

TIMEOUT_S = 0.3
MARGIN_S = 0.4  # scheduling slack on a loaded 2-core machine


@pytest.fixture
async def store(redis_store_url: tuple[str, str]):
    url, prefix = redis_store_url
    opened = RedisResponseStore(url, prefix=prefix, timeout_s=TIMEOUT_S)
    yield opened
    await opened.aclose()


@pytest.fixture
def raw_redis(redis_store_url: tuple[str, str]):
    client = redis.Redis.from_url(redis_store_url[0])
    yield client
    client.close()


async def test_round_trip_with_its_key_and_lifetime(
    store: RedisResponseStore, raw_redis: redis.Redis, record: RecordFactory
) -> None:
    original = record(upstream_id="resp_upstream")
    await store.put(original, ttl_s=600)
    assert await store.get("tenant:team-a", "resp_0123abcd") == original
    key = f"{store.prefix}:r:{{{namespace_digest('tenant:team-a')}}}:resp_0123abcd"
    assert record_key(store.prefix, "tenant:team-a", "resp_0123abcd") == key
    assert raw_redis.get(key) == original.to_json()
    assert 599_000 < raw_redis.pttl(key) <= 600_000
    assert key.count("{") == key.count("}") == 1  # one hash tag: a cluster slot per tenant


async def test_another_namespace_sees_nothing_and_deletes_nothing(
    store: RedisResponseStore, record: RecordFactory
) -> None:
    await store.put(record(namespace="tenant:team-a"), ttl_s=60)
    assert await store.get("tenant:team-b", "resp_0123abcd") is None
    assert await store.delete("tenant:team-b", "resp_0123abcd") is False
    assert await store.get("tenant:team-a", "resp_0123abcd") is not None
    assert await store.delete("tenant:team-a", "resp_0123abcd") is True
    assert await store.get("tenant:team-a", "resp_0123abcd") is None
    assert await store.delete("tenant:team-a", "resp_0123abcd") is False


async def test_a_record_expires(store: RedisResponseStore, record: RecordFactory) -> None:
    await store.put(record(), ttl_s=0.2)
    assert await store.get("tenant:team-a", "resp_0123abcd") is not None
    await asyncio.sleep(0.3)  # the lifetime running out is the behaviour
    assert await store.get("tenant:team-a", "resp_0123abcd") is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\x80\x04\x95garbage", id="corrupt"),
        pytest.param(b'{"v": 99, "id": "resp_0123abcd"}', id="another-version"),
    ],
)
async def test_an_unreadable_entry_reads_as_missing(
    store: RedisResponseStore, raw_redis: redis.Redis, raw: bytes
) -> None:
    raw_redis.set(record_key(store.prefix, "tenant:team-a", "resp_0123abcd"), raw)
    assert await store.get("tenant:team-a", "resp_0123abcd") is None


async def test_a_record_of_another_namespace_under_this_key_reads_as_missing(
    store: RedisResponseStore, raw_redis: redis.Redis, record: RecordFactory
) -> None:
    # What a digest collision or a hand-copied key would look like: the record says whose it is.
    foreign = record(namespace="tenant:team-b")
    raw_redis.set(record_key(store.prefix, "tenant:team-a", "resp_0123abcd"), foreign.to_json())
    assert await store.get("tenant:team-a", "resp_0123abcd") is None
    renamed = orjson.loads(record(response_id="resp_other").to_json())
    raw_redis.set(record_key(store.prefix, "tenant:team-a", "resp_0123abcd"), orjson.dumps(renamed))
    assert await store.get("tenant:team-a", "resp_0123abcd") is None


def _closed_store() -> RedisResponseStore:
    return RedisResponseStore(f"redis://127.0.0.1:{free_port()}/5", prefix="t", timeout_s=TIMEOUT_S)


async def test_invalid_ids_never_reach_redis(record: RecordFactory) -> None:
    store = _closed_store()  # any command would raise: these answer without one
    try:
        for bad in ("*", "resp_*", "{x}", "a:b", "", "x" * 129, "resp_1\r\nFLUSHALL"):
            assert await store.get("tenant:team-a", bad) is None
            assert await store.delete("tenant:team-a", bad) is False
        with pytest.raises(ValueError):
            await store.put(record(response_id="resp_{x}"), ttl_s=60)
    finally:
        await store.aclose()


async def test_redis_down_raises_unavailable_at_once_then_without_asking(record: RecordFactory) -> None:
    store = _closed_store()
    try:
        for call in (
            lambda: store.put(record(), ttl_s=60),
            lambda: store.get("tenant:team-a", "resp_0123abcd"),
            lambda: store.delete("tenant:team-a", "resp_0123abcd"),
        ):
            started = time.monotonic()
            with pytest.raises(ResponseStoreUnavailable) as caught:
                await call()
            assert time.monotonic() - started < TIMEOUT_S + MARGIN_S
            assert caught.value.status == 503
        assert store.degraded
    finally:
        await store.aclose()


async def test_a_blackholed_redis_costs_one_timeout_and_is_used_again_when_back(
    redis_store_url: tuple[str, str], record: RecordFactory
) -> None:
    db, prefix = redis_store_url[0].rsplit("/", 1)[1], redis_store_url[1]
    with FaultProxy((REDIS_HOST, REDIS_PORT)) as fp:
        store = RedisResponseStore(f"redis://127.0.0.1:{fp.port}/{db}", prefix=prefix, timeout_s=TIMEOUT_S)
        try:
            await store.put(record(), ttl_s=60)
            fp.set(blackhole=True)
            started = time.monotonic()
            with pytest.raises(ResponseStoreUnavailable):
                await store.get("tenant:team-a", "resp_0123abcd")
            assert TIMEOUT_S * 0.9 <= time.monotonic() - started < TIMEOUT_S + MARGIN_S
            started = time.monotonic()
            with pytest.raises(ResponseStoreUnavailable):  # within the pause: not asked again
                await store.get("tenant:team-a", "resp_0123abcd")
            assert time.monotonic() - started < 0.05
            fp.clear()
            await asyncio.sleep(PAUSE_S)  # the breaker's pause is the behaviour: then Redis is asked
            assert await store.get("tenant:team-a", "resp_0123abcd") == record()
            assert not store.degraded
        finally:
            await store.aclose()


def test_a_prefix_with_a_hash_tag_of_its_own_is_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        RedisResponseStore("redis://127.0.0.1:6379/5", prefix="{mine}", timeout_s=0.5)
