"""The fleet's notices on a real cluster (sharded pub/sub) and a real Sentinel set: a notice
reaches a subscriber, and still does after the channel's shard or the primary failed over;
on the cluster the subscriber reconnects to the new owner and runs its catch-up."""

from __future__ import annotations

import asyncio

import pytest

from asgi_llm.redis_channels import publish, subscribe_forever
from asgi_llm.redis_client import connect
from tests.waiting import await_until

CHANNEL = "fleet-test:notices"


async def listen(
    url: str, received: list[bytes], connects: list[bool]
) -> tuple[asyncio.Task[None], asyncio.Event]:
    subscribed = asyncio.Event()

    async def on_message(data: bytes) -> None:
        received.append(data)

    async def on_connect(client: object, reconnected: bool) -> None:
        connects.append(reconnected)

    task = asyncio.create_task(
        subscribe_forever(
            lambda: (url, CHANNEL), on_message, name="test channel", subscribed=subscribed,
            on_connect=on_connect, poll_s=0.1, backoff_max_s=1.0,
        )
    )  # fmt: skip
    await asyncio.wait_for(subscribed.wait(), 10)
    return task, subscribed


async def deliver(url: str, received: list[bytes], message: bytes) -> None:
    """Publish until the subscriber has it (a notice sent while it reconnects is lost: that is
    what the catch-up is for)."""
    client = connect(url, timeout=1)
    try:

        async def arrived() -> bool:
            if message not in received:
                await publish(client, CHANNEL, message)
                await asyncio.sleep(0.05)
            return message in received

        await await_until(arrived, timeout=15, interval=0.1, message=f"{message!r} to arrive")
    finally:
        await client.aclose()


@pytest.mark.parametrize("name", ["redis_cluster", "redis_sentinel"])
async def test_a_notice_arrives_before_and_after_a_failover(request, name):
    topology = request.getfixturevalue(name)
    received: list[bytes] = []
    connects: list[bool] = []
    task, subscribed = await listen(topology.url, received, connects)
    try:
        await deliver(topology.url, received, b"before")
        if name == "redis_cluster":
            await asyncio.to_thread(topology.failover, CHANNEL)  # the old owner SUNSUBSCRIBEs us
            await await_until(lambda: connects == [False, True], timeout=10, message="a re-subscription")
        else:
            await asyncio.to_thread(topology.failover)
        await deliver(topology.url, received, b"after")
        assert subscribed.is_set()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
