"""Redis down (THREATS D1, L8): local per-replica limits with a log line, `strict` -> 503,
budgets fail closed, no request waits longer than the timeout, recovery without restart."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from asgi_llm.ratelimit.limiter import RETRY_S
from tests.conftest import assert_error_shape
from tests.ratelimit.conftest import chat, limits_config

TIMEOUT_S = 0.2


def config(url: str, prefix: str, **extra):
    return limits_config(
        url, prefix, timeout_s=TIMEOUT_S, replicas=2, rules=[{"per": "key", "requests": "10/hour"}], **extra
    )


async def post(client):
    return await client.post("/v1/chat/completions", json=chat())


async def test_redis_down_degrades_to_local_limits_then_recovers(stack, own_redis, prefix, caplog):
    caplog.set_level(logging.WARNING, logger="asgi_llm.ratelimit")
    limiter, client = stack(config(own_redis.url, prefix))
    shared = [await post(client) for _ in range(2)]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in shared] == ["9", "8"]

    own_redis.stop()
    started = time.monotonic()
    local = [await post(client) for _ in range(7)]
    assert time.monotonic() - started < 7 * TIMEOUT_S  # one failed call, then local at once
    assert [r.status_code for r in local] == [200] * 5 + [429] * 2  # 10 / 2 replicas
    assert local[0].headers["x-ratelimit-limit-requests"] == "5"
    assert "local limit" in local[-1].json()["error"]["message"]
    stats = limiter.stats()
    assert stats["degraded"] and stats["degraded_admissions"] == 7
    down = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(down) == 1  # one line on the way down, not one per request

    own_redis.start()  # same port, empty: counts start again
    await asyncio.sleep(RETRY_S + 0.1)  # the limiter tries Redis again only after RETRY_S
    back = await post(client)
    assert back.status_code == 200
    assert back.headers["x-ratelimit-limit-requests"] == "10"
    assert back.headers["x-ratelimit-remaining-requests"] == "9"
    assert not limiter.stats()["degraded"]
    assert any("back" in r.getMessage() for r in caplog.records)


async def test_strict_answers_503_instead(stack, own_redis, prefix):
    _, client = stack(config(own_redis.url, prefix, strict=True))
    assert (await post(client)).status_code == 200
    own_redis.stop()
    refused = await post(client)
    assert_error_shape(refused, 503, "ratelimit_unavailable")
    assert int(refused.headers["retry-after"]) >= 1


async def test_budgets_fail_closed(stack, own_redis, prefix):
    _, client = stack(config(own_redis.url, prefix, budgets=[{"per": "key", "usd": 10, "period": "day"}]))
    assert (await post(client)).status_code == 200
    own_redis.stop()
    assert_error_shape(await post(client), 503, "budget_unavailable")


@pytest.fixture
def blackhole():
    """A port that completes the TCP handshake and then never answers (a hung Redis)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    sock.close()


async def test_a_hung_redis_costs_at_most_the_timeout(stack, blackhole, prefix):
    limiter, client = stack(config(blackhole, prefix))
    started = time.monotonic()
    responses = await asyncio.gather(*[post(client) for _ in range(5)])
    elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [200] * 5
    assert elapsed < TIMEOUT_S + 0.5
    assert limiter.stats()["degraded"]
