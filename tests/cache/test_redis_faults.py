"""The exact cache's Redis behind the fault proxy (THREATS D1, C6): slow but alive still
serves hits; slower than `cache.timeout_s` or blackholed means a bypass costing at most the
timeout once (then a back-off); it serves hits again without a restart."""

from __future__ import annotations

import asyncio
import statistics
import time

from asgi_llm import Config, build_app
from asgi_llm.cache.middleware import BACKOFF_S, CacheMiddleware
from tests.cache.conftest import cache_config, chat
from tests.conftest import REDIS_HOST, REDIS_PORT
from tests.fakes.faultproxy import FaultProxy

URL = "/v1/chat/completions"
TIMEOUT_S = 0.2
MARGIN_S = 0.25


def find_cache(app) -> CacheMiddleware:
    layer = app
    while not isinstance(layer, CacheMiddleware):
        layer = layer.app
    return layer


async def timed(client):
    started = time.monotonic()
    response = await client.post(URL, json=chat())
    assert response.status_code == 200
    return time.monotonic() - started, response.headers["x-cache"]


async def test_slow_blackholed_and_recovered_redis(asgi_client, upstream, redis_url):
    url, prefix = redis_url
    db = url.rsplit("/", 1)[1]
    with FaultProxy((REDIS_HOST, REDIS_PORT)) as fp:
        app = build_app(
            Config.from_dict(
                cache_config(
                    upstream,
                    backend=f"redis://127.0.0.1:{fp.port}/{db}",
                    key_prefix=prefix,
                    timeout_s=TIMEOUT_S,
                )
            )
        )
        cache = find_cache(app)
        client = asgi_client(app=app)
        assert (await timed(client))[1] == "miss"
        hits = [await timed(client) for _ in range(5)]
        assert {kind for _, kind in hits} == {"hit"}
        baseline = statistics.median(t for t, _ in hits)

        # +80 ms per round trip, under the timeout: hits still, one round trip each.
        fp.set(latency_ms=40)
        slow = [await timed(client) for _ in range(3)]
        assert {kind for _, kind in slow} == {"hit"}
        assert all(0.07 <= t - baseline <= TIMEOUT_S + MARGIN_S for t, _ in slow), slow

        # Blackholed: the first request waits the timeout, then everything bypasses at once.
        fp.set(latency_ms=0, blackhole=True)
        holed = [await timed(client) for _ in range(4)]
        assert {kind for _, kind in holed} == {"bypass"}
        assert TIMEOUT_S - 0.05 <= holed[0][0] <= TIMEOUT_S + MARGIN_S, holed
        assert all(t < TIMEOUT_S for t, _ in holed[1:]), holed
        assert cache.stats.backend_errors == 1 and cache.degraded

        # Healthy again: after the back-off, hits from the same entry, no restart.
        fp.clear()
        await asyncio.sleep(BACKOFF_S + 0.1)
        assert (await timed(client))[1] == "hit"
        assert not cache.degraded

        # +400 ms per round trip, over the timeout: a bypass within the timeout.
        fp.set(latency_ms=200)
        late = await timed(client)
        assert late[1] == "bypass" and late[0] <= TIMEOUT_S + MARGIN_S, late
        assert cache.stats.backend_errors == 2
        fp.clear()
        await asyncio.sleep(BACKOFF_S + 0.1)
        assert (await timed(client))[1] == "hit"
