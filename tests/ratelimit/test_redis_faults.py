"""The limiter's Redis behind the fault proxy (THREATS L8, D1), and key hygiene with many
identities (L9).

L8: a slow Redis (below `limits.timeout_s`) is still the shared limiter; a slower or
blackholed one degrades to the local per-replica limits (limit / replicas) after at most
`timeout_s`; flapping never fails a request; it all comes back without a restart.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest
import redis

from asgi_llm.ratelimit.limiter import RETRY_S
from tests.conftest import REDIS_HOST, REDIS_PORT
from tests.fakes.faultproxy import FaultProxy
from tests.ratelimit.conftest import REDIS_DB, chat, limits_config

TIMEOUT_S = 0.3
MARGIN_S = 0.45  # scheduling slack on a shared 2-core box (the full suite runs servers alongside)
SHARED, LOCAL = "10000", "5000"  # x-ratelimit-limit-requests: shared, and local with 2 replicas


async def timed(client, key: str = "k1") -> tuple[float, object]:
    started = time.monotonic()
    response = await client.post("/v1/chat/completions", json=chat(), headers={"x-test-key": key})
    return time.monotonic() - started, response


async def burst(client, n: int) -> list[tuple[float, object]]:
    return [await timed(client) for _ in range(n)]


def limits_of(results) -> set[str]:
    return {r.headers["x-ratelimit-limit-requests"] for _, r in results}


async def test_slow_then_blackholed_redis_degrades_within_the_timeout_and_recovers(stack, redis_url, prefix):
    with FaultProxy((REDIS_HOST, REDIS_PORT)) as fp:
        url = f"redis://127.0.0.1:{fp.port}/{REDIS_DB}"
        limiter, client = stack(
            limits_config(
                url, prefix, timeout_s=TIMEOUT_S, replicas=2, rules=[{"per": "key", "requests": "10000/hour"}]
            )
        )
        await timed(client)  # the connection is opened
        base = await burst(client, 5)
        assert limits_of(base) == {SHARED}
        baseline = statistics.median(t for t, _ in base)
        overheads: list[float] = []

        # +100 ms per round trip (50 ms each way), under the timeout: still the shared limiter.
        fp.set(latency_ms=50)
        slow = await burst(client, 5)
        assert all(r.status_code == 200 for _, r in slow)
        assert limits_of(slow) == {SHARED} and not limiter.stats()["degraded"]
        added = [t - baseline for t, _ in slow]
        assert min(added) >= 0.09, added  # the latency is really there
        overheads += added

        # +400 ms per round trip (200 ms each way), over the timeout: local limits.
        fp.set(latency_ms=200)
        slower = await burst(client, 5)
        assert all(r.status_code == 200 for _, r in slower)
        assert limits_of(slower) == {LOCAL} and limiter.stats()["degraded"]
        overheads += [t - baseline for t, _ in slower]

        # Back to normal: the next call after RETRY_S uses Redis again, no restart.
        fp.clear()
        await asyncio.sleep(RETRY_S + 0.1)
        back = await burst(client, 3)
        assert limits_of(back) == {SHARED} and not limiter.stats()["degraded"]

        # Blackholed (bytes held, sockets open): one request pays the timeout, the rest go local.
        fp.set(blackhole=True)
        holed = await burst(client, 5)
        assert all(r.status_code == 200 for _, r in holed)
        assert limits_of(holed) == {LOCAL}
        assert holed[0][0] >= TIMEOUT_S - 0.05  # it did wait for Redis, once
        assert all(t < TIMEOUT_S / 2 for t, _ in holed[1:])  # then local at once
        overheads += [t - baseline for t, _ in holed]
        failures = limiter.stats()["store_failures"]

        fp.clear()
        await asyncio.sleep(RETRY_S + 0.1)  # Redis is tried again only after RETRY_S
        recovered = await burst(client, 3)
        assert limits_of(recovered) == {SHARED} and not limiter.stats()["degraded"]
        assert limiter.stats()["store_failures"] == failures  # no further failure once back

        assert max(overheads) <= TIMEOUT_S + MARGIN_S, max(overheads)


async def test_flapping_redis_never_fails_a_request(stack, redis_url, prefix):
    with FaultProxy((REDIS_HOST, REDIS_PORT)) as fp:
        url = f"redis://127.0.0.1:{fp.port}/{REDIS_DB}"
        limiter, client = stack(
            limits_config(
                url, prefix, timeout_s=TIMEOUT_S, replicas=2, rules=[{"per": "key", "requests": "10000/hour"}]
            )
        )
        await timed(client)
        results = []
        # Down and up twice, a few requests in each phase (phases by count, not by the clock:
        # a loaded CI box must not change what is tested). Going up, the limiter tries Redis
        # again after RETRY_S.
        for phase in range(5):
            down = phase % 2 == 1
            fp.set(blackhole=down)
            if not down and phase:
                await asyncio.sleep(RETRY_S + 0.05)
            results += [await timed(client) for _ in range(4)]
        assert all(r.status_code == 200 for _, r in results)
        assert max(t for t, _ in results) <= TIMEOUT_S + MARGIN_S
        assert limits_of(results) == {SHARED, LOCAL}  # it went down and came back
        fp.clear()
        await asyncio.sleep(RETRY_S + 0.1)  # Redis is tried again only after RETRY_S
        assert limits_of(await burst(client, 2)) == {SHARED}


# -- L9: many identities, every key expires ------------------------------------------------
# 2,000 identities on the default strategy; the other two write the same keys per identity.
@pytest.mark.parametrize(
    ("strategy", "identities"),
    [("moving-window", 2000), ("fixed-window", 500), ("sliding-window-counter", 500)],
)
async def test_thousands_of_identities_leave_only_expiring_keys(
    stack, own_redis, prefix, strategy, identities
):
    """Each identity's windows (requests and tokens) and its concurrency lease are written
    by the admission script, and settlement rewrites the token reservation; every key left
    behind carries a TTL, and DBSIZE grows by exactly those keys (the leases, released,
    leave nothing)."""
    probe = redis.Redis(port=own_redis.port, socket_timeout=2)
    try:
        before = probe.dbsize()
        _, client = stack(
            limits_config(
                own_redis.url,
                prefix,
                timeout_s=5,
                strategy=strategy,
                rules=[{"per": "key", "requests": "100/minute", "tokens": "100000/minute", "concurrency": 2}],
            )
        )
        for start in range(0, identities, 100):
            responses = await asyncio.gather(
                *(
                    client.post("/v1/chat/completions", json=chat(), headers={"x-test-key": f"user-{i}"})
                    for i in range(start, start + 100)
                )
            )
            assert all(r.status_code == 200 for r in responses)
        keys = list(probe.scan_iter(match="{" + prefix + "}*", count=1000))
        grown = probe.dbsize() - before
        assert grown == len(keys)  # nothing written outside the prefix
        assert len(keys) % identities == 0 and len(keys) >= 2 * identities  # 2 windows each
        pipe = probe.pipeline(transaction=False)
        for key in keys:
            pipe.pttl(key)
        ttls = pipe.execute()
        no_expiry = [k for k, ttl in zip(keys, ttls, strict=True) if ttl <= 0]
        assert not no_expiry, no_expiry[:5]
        assert max(ttls) <= 61_000 + 60_000  # at most a window (and the next) ahead
    finally:
        probe.close()
