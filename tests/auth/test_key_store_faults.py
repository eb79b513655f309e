"""The fleet key store's Redis behind the fault proxy (THREATS D1): slow but alive still
authenticates; blackholed, a key only the store knows fails closed (503
`dependency_unavailable`, never 401, never allow) after the local cache runs out and within the
client's socket timeout, while config keys are served from the config (`on_unavailable:
open`) except one last seen revoked; it authenticates again without a restart, and the outage
is logged once and shown by /readyz while it lasts."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from asgi_llm.auth.keys import RETRY_S
from asgi_llm.redis_client import DEFAULT_TIMEOUT_S
from tests.auth.conftest import KEYS, auth_config, bearer
from tests.conftest import REDIS_HOST, REDIS_PORT, assert_error_shape
from tests.fakes.faultproxy import FaultProxy

CHAT = {"model": "mini", "messages": [{"role": "user", "content": "hi"}]}
CACHE_TTL_S = 0.5
MARGIN_S = 0.4
UNKNOWN = "sk-unknown-key-0123456789"


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

        # Blackholed: the local positive entry serves until it expires. Then the first lookup
        # waits out the socket timeout; from then on, until Redis is tried again, nobody waits.
        fp.set(latency_ms=0, blackhole=True)
        cached_t, cached = await timed(client)
        assert cached.status_code == 200 and cached_t < 0.2
        await asyncio.sleep(CACHE_TTL_S + 0.1)
        first_t, first = await timed(client)
        assert first.status_code == 200  # a config key: served from the config
        assert first_t <= DEFAULT_TIMEOUT_S + MARGIN_S, first_t
        for key in (UNKNOWN, UNKNOWN, KEYS["alice"]):
            held_t, held = await timed(client, key)
            assert held_t < 0.2, held_t
            if key == UNKNOWN:  # only the store could vouch for it: 503, not 401
                assert_error_shape(held, 503, "dependency_unavailable")
                assert int(held.headers["retry-after"]) >= 1
            else:
                assert held.status_code == 200

        # Back: once the retry pause is over, the next lookup reconnects.
        fp.clear()
        await asyncio.sleep(RETRY_S)
        back_t, back = await timed(client, UNKNOWN)
        assert_error_shape(back, 401)
        assert back_t < DEFAULT_TIMEOUT_S


async def test_an_outage_is_logged_once_shown_by_readyz_and_keeps_known_revocations(
    asgi_client, prefix, caplog
):
    with FaultProxy((REDIS_HOST, REDIS_PORT)) as fp:
        store = {"url": f"redis://127.0.0.1:{fp.port}/3", "prefix": prefix, "cache_ttl_s": CACHE_TTL_S}
        client = asgi_client(auth_config(key_store=store))
        revoked = await client.post("/admin/keys/revoke", headers=bearer(KEYS["root"]), json={"id": "bob"})
        assert revoked.status_code == 200
        assert_error_shape((await timed(client, KEYS["bob"]))[1], 401)
        assert (await client.get("/readyz")).json() == {"status": "ready"}

        fp.down()
        await asyncio.sleep(CACHE_TTL_S + 0.1)
        for _ in range(3):
            assert (await timed(client, KEYS["alice"]))[1].status_code == 200
            assert_error_shape((await timed(client, KEYS["bob"]))[1], 401)  # revoked before: still
            assert_error_shape((await timed(client, UNKNOWN))[1], 503, "dependency_unavailable")
        readyz = await client.get("/readyz")
        assert readyz.status_code == 200
        assert readyz.json() == {"status": "ready", "degraded": ["key_store"]}

        fp.up()
        await asyncio.sleep(RETRY_S)
        assert_error_shape((await timed(client, UNKNOWN))[1], 401)
        assert (await client.get("/readyz")).json() == {"status": "ready"}
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "asgi_llm.auth"]
    assert [level for level, _ in lines] == ["WARNING", "INFO"], lines  # once down, once back


async def test_the_key_stores_timeout_is_its_own_setting(asgi_client, prefix):
    # A store 0.6 s away per round trip: past the default timeout (0.5 s) its keys are refused
    # 503; with `timeout_s: 5` they are answered, slowly, by the store (a new connection's
    # handshake takes round trips of its own).
    with FaultProxy((REDIS_HOST, REDIS_PORT)) as fp:
        minted = {}
        for timeout_s, expected in ((None, 503), (5.0, 200)):
            store = {"url": f"redis://127.0.0.1:{fp.port}/3", "prefix": prefix, "cache_ttl_s": 0}
            if timeout_s is not None:
                store["timeout_s"] = timeout_s
            client = asgi_client(auth_config(key_store=store))
            if not minted:  # a key only the store knows, minted while Redis is quick
                made = await client.post(
                    "/admin/keys", headers=bearer(KEYS["root"]), json={"id": f"k-{prefix}", "roles": ["user"]}
                )
                assert made.status_code == 201, made.text
                minted["key"] = made.json()["key"]
            fp.set(latency_ms=300)  # each way: 0.6 s a round trip
            elapsed, answer = await timed(client, minted["key"])
            fp.clear()
            if expected == 503:
                assert_error_shape(answer, 503, "dependency_unavailable")
                assert elapsed <= DEFAULT_TIMEOUT_S + MARGIN_S, elapsed
            else:
                assert answer.status_code == 200, (elapsed, answer.text)
                assert 0.6 <= elapsed < 5.0, elapsed
