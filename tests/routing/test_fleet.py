"""Cooldowns shared by a fleet through a real Redis (routing/fleet.py): one replica's
decision is every replica's, a late replica catches up, and Redis down changes nothing."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx2
import pytest

from asgi_llm.routing.fleet import FleetCooldowns
from asgi_llm.routing.health import CooldownTracker
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.harness import ProxyServer, free_port
from tests.waiting import await_until, wait_until

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture
def redis_url(redis_available):
    return f"{redis_available}/5"


def replica(url, prefix, known=("a", "b")):
    tracker = CooldownTracker()
    return tracker, FleetCooldowns(tracker, settings=lambda: (url, prefix), known=lambda: set(known))


async def test_a_cooldown_and_a_recovery_reach_the_other_replicas(redis_url):
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    (ta, fa), (tb, fb) = replica(redis_url, prefix), replica(redis_url, prefix)
    tasks = [asyncio.create_task(f.run()) for f in (fa, fb)]
    try:
        await asyncio.wait_for(asyncio.gather(fa.subscribed.wait(), fb.subscribed.wait()), 3)
        ta.cool_for("a", 30)
        fa.cooled("a", 30)
        await await_until(lambda: tb.cooling("a"), timeout=3)
        assert not tb.cooling("b")
        # A replica that starts now learns the cooldown from Redis, not from a notice it missed.
        tc, fc = replica(redis_url, prefix)
        tasks.append(asyncio.create_task(fc.run()))
        await asyncio.wait_for(fc.subscribed.wait(), 3)
        assert tc.cooling("a")
        ta.success("a")
        fa.recovered("a")
        await await_until(lambda: not tb.cooling("a") and not tc.cooling("a"), timeout=3)
        assert fb.received >= 2 and fa.received == 0  # nobody hears its own notices
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_notices_for_unknown_deployments_or_garbage_are_ignored(redis_url):
    import redis.asyncio as aioredis

    prefix = f"test-{uuid.uuid4().hex[:10]}"
    tracker, fleet = replica(redis_url, prefix)
    task = asyncio.create_task(fleet.run())
    client = aioredis.from_url(redis_url)
    try:
        await asyncio.wait_for(fleet.subscribed.wait(), 3)
        for junk in (b"not json", b'{"from":"x","id":"zzz","until":9e18}', b'{"id":"a"}', b"x" * 5000):
            await client.publish(f"{{{prefix}}}:cooldowns", junk)
        await client.publish(
            f"{{{prefix}}}:cooldowns", b'{"from":"x","id":"b","until":%f}' % (time.time() + 30)
        )
        await await_until(lambda: tracker.cooling("b"), timeout=3)
        assert not tracker.cooling("a") and "zzz" not in tracker._health
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()


async def test_redis_down_leaves_each_replica_its_own_cooldowns(no_secrets_in_logs):
    tracker, fleet = replica(f"redis://127.0.0.1:{free_port()}/0", "p")
    task = asyncio.create_task(fleet.run())
    try:
        fleet.cooled("a", 30)  # queued; never sent, never raised
        await await_until(
            lambda: any("shared cooldowns: Redis unavailable" in line for line in no_secrets_in_logs.lines),
            message="the first connection attempt to fail",
        )
        assert not fleet.subscribed.is_set() and not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_two_servers_share_a_cooldown(redis_url, tmp_path):
    """Replica A cools a failing deployment down; replica B skips it from then on without
    having seen it fail (its own failure count would need two failures)."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    with FakeUpstream("bad") as bad, FakeUpstream("good") as good:
        bad.default = Behavior(status=503)
        config = {
            "models": [
                {
                    "name": "m",
                    "deployments": [
                        {
                            "id": "bad",
                            "provider": "openai-compatible",
                            "model": "m",
                            "base_url": bad.base_url,
                        },
                        {
                            "id": "good",
                            "provider": "openai-compatible",
                            "model": "m",
                            "base_url": good.base_url,
                        },
                    ],
                }
            ],
            "routing": {
                "strategy": "ordered",
                "retries": 1,
                "redis_url": redis_url,
                "redis_prefix": prefix,
                "cooldown": {"failures": 2, "seconds": 30},
            },
        }
        with ProxyServer(config, tmp_path) as a, ProxyServer(config, tmp_path) as b:
            body = {"model": "m", "messages": USER}
            for _ in range(2):
                reply = httpx2.post(a.base_url + "/chat/completions", json=body, timeout=10)
                assert reply.headers["x-llm-deployment"] == "good" and reply.headers["x-llm-attempts"] == "2"
            assert len(bad.requests) == 2

            def first_attempt_to_good() -> httpx2.Response | None:
                reply = httpx2.post(b.base_url + "/chat/completions", json=body, timeout=10)
                return reply if reply.headers["x-llm-attempts"] == "1" else None

            reply = wait_until(  # B has heard of the cooldown once its first attempt goes to `good`
                first_attempt_to_good, timeout=3, interval=0.1, message="replica B to hear of the cooldown"
            )
            assert reply.headers["x-llm-deployment"] == "good"
            sent = len(bad.requests)
            for _ in range(5):
                assert (
                    httpx2.post(b.base_url + "/chat/completions", json=body, timeout=10).headers[
                        "x-llm-attempts"
                    ]
                    == "1"
                )
            assert len(bad.requests) == sent <= 3
