"""The one module that makes our own Redis clients (key store, shared cooldowns, the reload
channel, the semantic fleet stream). The rate limiter's and the exact cache's clients are
made by the libraries that own them (`limits`, aiocache), from the same URLs, with the
timeouts their sections set.

Socket timeouts are always set, so a hung Redis can never block a request forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

DEFAULT_TIMEOUT_S = 0.5
_BACKOFF_MIN_S = 0.5

log = logging.getLogger("asgi_llm.redis")


def connect(url: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> Any:
    """An asyncio Redis client (a pool; connects lazily on the first command)."""
    try:
        import redis.asyncio as aioredis
    except ImportError as exc:  # pragma: no cover - the `redis` extra is missing
        raise RuntimeError("Redis support needs the extra: pip install 'asgi-llm[redis]'") from exc
    return aioredis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
    )


def errors() -> tuple[type[BaseException], ...]:
    """What a Redis outage looks like to callers (connection, timeout and server errors)."""
    import redis

    return (redis.RedisError, OSError, TimeoutError)


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
    """Listen to a pub/sub channel until cancelled, surviving Redis outages.

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
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel)
            if on_connect is not None:
                await on_connect(client, connected_before)
            subscribed.set()
            if outage_logged:
                log.info("%s: Redis is back", name)
            backoff, outage_logged, connected_before = _BACKOFF_MIN_S, False, True
            while target() == current:
                if on_tick is not None:
                    await on_tick(client)
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=poll_s)
                if message is None or message.get("type") != "message":
                    continue
                data = message.get("data")
                if isinstance(data, str):
                    data = data.encode()
                if isinstance(data, bytes) and len(data) <= max_message_bytes:
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
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()
