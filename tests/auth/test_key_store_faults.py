"""The fleet key store's Redis behind the fault proxy (THREATS D1): slow but alive still
authenticates; blackholed fails closed (503 `dependency_unavailable`, never 401, never
allow) after the local cache runs out and within the client's socket timeout; it
authenticates again without a restart."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from asgi_llm.redis_client import DEFAULT_TIMEOUT_S
from tests.auth.conftest import KEYS, auth_config, bearer
from tests.conftest import REDIS_HOST, REDIS_PORT, assert_error_shape
from tests.fakes.faultproxy import FaultProxy

CHAT = {"model": "mini", "messages": [{"role": "user", "content": "hi"}]}
CACHE_TTL_S = 0.5
MARGIN_S = 0.4


@pytest.fixture
def prefix(redis_available):
    name = f"test-faults-{uuid.uuid4().hex[:12]}"
    yield name
    import redis

    client = redis.Redis.from_url(f"{redis_available}/3")
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)
    client.close()


async def timed(client, key: str = KEYS["alice"]):
    started = time.monotonic()
    response = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(key))
    return time.monotonic() - started, response


async def test_slow_blackholed_and_recovered_key_store(asgi_client, prefix):
    with FaultProxy((REDIS_HOST, REDIS_PORT)) as fp:
        client = asgi_client(
            auth_config(
                key_store={
                    "url": f"redis://127.0.0.1:{fp.port}/3",
                    "prefix": prefix,
                    "cache_ttl_s": CACHE_TTL_S,
                }
            )
        )
        base_t, base = await timed(client)
        assert base.status_code == 200

        # +100 ms per round trip: still answered from the store once the local entry expired.
        fp.set(latency_ms=50)
        await asyncio.sleep(CACHE_TTL_S + 0.1)
        slow_t, slow = await timed(client)
        assert slow.status_code == 200
        assert 0.09 <= slow_t <= DEFAULT_TIMEOUT_S + MARGIN_S, slow_t

        # Blackholed: the local positive entry serves until it expires, then 503, not 401.
        fp.set(latency_ms=0, blackhole=True)
        cached_t, cached = await timed(client)
        assert cached.status_code == 200 and cached_t < 0.2
        await asyncio.sleep(CACHE_TTL_S + 0.1)
        for key in (KEYS["alice"], "sk-unknown-key-0123456789"):
            held_t, held = await timed(client, key)
            assert_error_shape(held, 503, "dependency_unavailable")
            assert int(held.headers["retry-after"]) >= 1
            assert held_t <= DEFAULT_TIMEOUT_S + MARGIN_S, held_t

        # Back: the next lookup reconnects.
        fp.clear()
        back_t, back = await timed(client)
        assert back.status_code == 200 and back_t < DEFAULT_TIMEOUT_S
        unknown = (await timed(client, "sk-unknown-key-0123456789"))[1]
        assert_error_shape(unknown, 401)
