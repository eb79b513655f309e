"""Three real `asgi-llm serve` processes sharing one Redis: limits hold across replicas
exactly as on one (THREATS L1, L2), and a budget spent on one replica is spent on all."""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack

import httpx2
import pytest
import redis

from tests.conftest import assert_error_shape
from tests.harness import ProxyServer
from tests.ratelimit.conftest import USER, priced_mock
from tests.waiting import wait_until

REPLICAS = 3


@pytest.fixture(scope="module")
def fleet_store(redis_available):
    """(Redis URL, key prefix) the fleet's limits and budgets live under."""
    return f"{redis_available}/1", f"rl-fleet-{time.time_ns()}"


@pytest.fixture(scope="module")
def fleet(fleet_store, tmp_path_factory):
    url, prefix = fleet_store
    config = {
        "models": [
            priced_mock("mock-1"),
            priced_mock("priced", input_per_mtok=10_000, output_per_mtok=10_000),
        ],
        "limits": {
            "storage": url,
            "key_prefix": prefix,
            "replicas": REPLICAS,
            "timeout_s": 5,
            "rules": [{"per": "global", "model": "mock-1", "requests": "50/minute"}],
            "budgets": [{"per": "tenant", "usd": 0.1, "period": "day"}],
        },
    }
    workdir = tmp_path_factory.mktemp("fleet")
    with ExitStack() as stack:
        servers = [stack.enter_context(ProxyServer(config, workdir)) for _ in range(REPLICAS)]
        yield servers
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match="{" + prefix + "}*"):
        client.delete(key)
    client.close()


async def test_200_concurrent_requests_across_three_replicas_50_succeed(fleet):
    limits = httpx2.Limits(max_connections=300, max_keepalive_connections=300)
    async with httpx2.AsyncClient(limits=limits, timeout=30) as client:
        responses = await asyncio.gather(
            *[
                client.post(
                    fleet[i % REPLICAS].base_url + "/chat/completions",
                    json={"model": "mock-1", "messages": USER},
                )
                for i in range(200)
            ]
        )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 50, statuses
    assert statuses.count(429) == 150
    for replica in range(REPLICAS):  # every replica both served and refused
        mine = statuses[replica::REPLICAS]
        assert 200 in mine and 429 in mine
    for response in responses:
        assert response.headers["x-ratelimit-limit-requests"] == "50"
        if response.status_code == 429:
            assert_error_shape(response, 429, "rate_limit_exceeded")
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["x-ratelimit-remaining-requests"] == "0"
    for server in fleet:
        assert "unavailable" not in server.log()  # never degraded: the count is the fleet's


def spent_micros(url: str, prefix: str) -> int:
    """Every budget's spend so far, in micro-USD, as the fleet's Redis holds it."""
    client = redis.Redis.from_url(url)
    try:
        return sum(
            int(micros)
            for key in client.scan_iter(match="{" + prefix + "}:budget:*")
            for micros in client.hvals(key)
        )
    finally:
        client.close()


def test_budget_spent_on_one_replica_is_spent_on_every_replica(fleet, fleet_store):
    body = {"model": "priced", "messages": USER}  # 8 tokens at 0.01 USD: 0.08 USD a request
    spent = spent_micros(*fleet_store)
    for server in fleet[:2]:
        assert httpx2.post(server.base_url + "/chat/completions", json=body, timeout=10).status_code == 200
        spent += 80_000  # micro-USD; charged once the response has ended: the client may have it first
        wait_until(lambda want=spent: spent_micros(*fleet_store) == want, message=f"{spent} micro-USD spent")
    for server in fleet:
        refused = httpx2.post(server.base_url + "/chat/completions", json=body, timeout=10)
        assert_error_shape(refused, 429, "insufficient_quota")
        assert int(refused.headers["retry-after"]) >= 1
