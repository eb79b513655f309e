"""The one module that makes our own Redis clients (key store, shared cooldowns, the reload
channel, the semantic fleet stream). The rate limiter's and the exact cache's clients are
made by the libraries that own them (`limits`, aiocache), from the same URLs, with the
timeouts their sections set.

Socket timeouts are always set, so a hung Redis can never block a request forever.
"""

from __future__ import annotations

from typing import Any

DEFAULT_TIMEOUT_S = 0.5


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
