"""Pub/sub for the fleet's notices (config reloads, shared cooldowns), on every topology.

On one Redis or a Sentinel-managed primary: PUBLISH and SUBSCRIBE. On a Redis Cluster:
sharded pub/sub (Redis 7's SPUBLISH and SSUBSCRIBE): a channel lives on the shard that owns
its slot, so a notice costs one shard, not a broadcast over the whole cluster bus. The
subscriber holds one connection to the primary owning the channel's slot; when that shard
fails over, the connection drops or the server unsubscribes it (SUNSUBSCRIBE: the node lost
the slot), and the loop reconnects to the new owner with backoff and runs its catch-up, which
re-reads the state the notices carry (nothing published meanwhile is missed for good).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgi_llm.redis_client import connect, errors, is_cluster, node_client, parse

_BACKOFF_MIN_S = 0.5

log = logging.getLogger("asgi_llm.redis")


def publish(target: Any, channel: str, message: bytes, *, client: Any = None) -> Any:
    """PUBLISH, or SPUBLISH on a cluster. `target` is `client` or one of its pipelines; the
    result is what `target` returns (an awaitable, or the pipeline)."""
    sharded = is_cluster(target if client is None else client)
    return (target.spublish if sharded else target.publish)(channel, message)


class _Subscription:
    """One channel's subscription on `client`'s topology; `read` raises ConnectionError when
    a cluster node stops serving the channel's slot."""

    def __init__(self, client: Any, url: str) -> None:
        self.client = client
        self.url = url
        self.node_client: Any = None
        self.pubsub: Any = None
        self.sharded = is_cluster(client)

    async def open(self, channel: str) -> None:
        if not self.sharded:
            self.pubsub = self.client.pubsub()
            await self.pubsub.subscribe(channel)
            return
        async with asyncio.timeout(self.client.deadline_s):
            await self.client.initialize()
        node = self.client.get_node_from_key(channel)
        target = parse(self.url)
        self.node_client = node_client(
            node.host,
            node.port,
            username=target.username,
            password=target.password,
            timeout=self.client.deadline_s,
        )
        self.pubsub = self.node_client.pubsub()
        await self.pubsub.ssubscribe(channel)

    async def read(self, timeout: float) -> bytes | None:
        message = await self.pubsub.get_message(timeout=timeout)
        if message is None:
            return None
        kind = message.get("type")
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "sunsubscribe":
            import redis

            raise redis.ConnectionError("the channel's slot moved to another node")
        if kind not in ("message", "smessage"):
            return None
        data = message.get("data")
        return data.encode() if isinstance(data, str) else data if isinstance(data, bytes) else None

    async def aclose(self) -> None:
        for closing in (self.pubsub, self.node_client):
            if closing is not None:
                with contextlib.suppress(Exception):
                    await closing.aclose()


async def subscribe_forever(
    target: Callable[[], tuple[str, str] | None],
    on_message: Callable[[bytes], Awaitable[None]],
    *,
    name: str,
    subscribed: asyncio.Event,
    connect_to: Callable[[str], Any] | None = None,
    on_connect: Callable[[Any, bool], Awaitable[None]] | None = None,
    on_tick: Callable[[Any], Awaitable[None]] | None = None,
    poll_s: float = 0.4,
    max_message_bytes: int = 1024,
    backoff_max_s: float = 30.0,
    idle_s: float = 1.0,
) -> None:
    """Listen to a pub/sub channel until cancelled, surviving Redis outages and failovers.

    `target()` names the (url, channel) in force, or None while the feature is off; a change
    re-subscribes. After subscribing, `on_connect(client, reconnected)` runs (a catch-up);
    between messages `on_tick(client)` runs (work to send). Messages larger than
    `max_message_bytes` are dropped. Redis down: `subscribed` is cleared, one warning is
    logged, and the loop retries with exponential backoff up to `backoff_max_s`.
    """
    backoff, connected_before, outage_logged = _BACKOFF_MIN_S, False, False
    while True:
        current = target()
        if current is None:
            subscribed.clear()
            await asyncio.sleep(idle_s)
            continue
        url, channel = current
        try:
            redis_errors = errors()
            client = (connect_to or connect)(url)
        except (ImportError, RuntimeError):
            if not outage_logged:
                log.error("%s needs the Redis extra: pip install 'asgi-llm[redis]'", name)
                outage_logged = True
            await asyncio.sleep(backoff_max_s)
            continue
        subscription = _Subscription(client, url)
        try:
            await subscription.open(channel)
            if on_connect is not None:
                await on_connect(client, connected_before)
            subscribed.set()
            if outage_logged:
                log.info("%s: Redis is back", name)
            backoff, outage_logged, connected_before = _BACKOFF_MIN_S, False, True
            while target() == current:
                if on_tick is not None:
                    await on_tick(client)
                data = await subscription.read(poll_s)
                if data is not None and len(data) <= max_message_bytes:
                    await on_message(data)
        except redis_errors as exc:
            subscribed.clear()
            if not outage_logged:
                log.warning("%s: Redis unavailable (%s); retrying", name, exc.__class__.__name__)
                outage_logged = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, backoff_max_s)
        finally:
            subscribed.clear()
            await subscription.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()


__all__ = ["publish", "subscribe_forever"]
