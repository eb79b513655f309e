"""The one Redis client factory (asgi_llm/redis_client.py): its URL grammar, and its clients
on a real cluster and a real Sentinel set: bounded commands, MOVED followed, nothing left open."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from asgi_llm.config.urls import check_redis_url
from asgi_llm.redis_client import RedisTarget, connect, is_cluster, is_redis_url, parse, slot_tag


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("redis://h:6380/2", RedisTarget("single", url="redis://h:6380/2")),
        ("async+rediss://h:6380", RedisTarget("single", url="rediss://h:6380")),
        ("redis+unix:///run/redis.sock?db=3", RedisTarget("single", url="unix:///run/redis.sock?db=3")),
        (
            "redis+cluster://u:p%40w@h1:7000,h2:7001",
            RedisTarget("cluster", nodes=(("h1", 7000), ("h2", 7001)), username="u", password="p@w"),
        ),
        (
            "redis+sentinel://:pw@s1:26379,[::1]:26380/main/2",
            RedisTarget(
                "sentinel", nodes=(("s1", 26379), ("::1", 26380)), service="main", db=2, password="pw"
            ),
        ),
    ],
)
def test_one_grammar_names_every_topology(url, target):
    assert check_redis_url(url.removeprefix("async+")) and is_redis_url(url)
    assert parse(url) == target


def test_a_hash_tag_keeps_a_prefix_on_one_slot():
    assert slot_tag("asgi_llm") == "{asgi_llm}"
    assert slot_tag("app:{tenants}") == "app:{tenants}"  # the user's own tag is kept
    assert not is_redis_url("memory://") and not is_redis_url("https://h")


async def test_a_cluster_client_follows_a_failover_and_never_waits_past_its_deadline(redis_cluster):
    client = connect(redis_cluster.url, timeout=0.3)
    try:
        assert is_cluster(client)
        await client.set("{moved}:k", b"v")
        redis_cluster.failover("{moved}")  # the slot's owner changes: MOVED, followed
        assert await client.get("{moved}:k") == b"v"
        sleeper = redis.Redis(port=redis_cluster.primary_of("{moved}"), socket_timeout=3)
        sleeping = asyncio.create_task(asyncio.to_thread(sleeper.execute_command, "DEBUG", "SLEEP", "0.7"))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await client.get("{moved}:k")
        assert time.monotonic() - started < 0.5  # the deadline, not the node's 0.6 s more
        await sleeping
        sleeper.close()
        assert await client.get("{moved}:k") == b"v"
    finally:
        await client.aclose()


def sentinel_clients(port: int) -> int:
    sentinel = redis.Redis(port=port, socket_timeout=1)
    try:
        clients = sentinel.client_list()  # less this one and the sentinels' links to each other
        return sum(1 for c in clients if not c.get("name", "").startswith("sentinel-")) - 1
    finally:
        sentinel.close()


async def test_a_sentinel_client_finds_the_primary_and_closes_every_connection(redis_sentinel):
    ports = redis_sentinel.sentinel_ports
    before = [sentinel_clients(port) for port in ports]
    client = connect(redis_sentinel.url, timeout=1)
    await client.set("sentinel:k", b"v")
    assert await client.get("sentinel:k") == b"v"
    assert client.connection_pool.connection_kwargs["socket_timeout"] == 1
    await client.aclose()
    assert [sentinel_clients(port) for port in ports] == before
