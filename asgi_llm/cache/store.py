"""Where exact entries live: a small protocol, and its two implementations (in process through
aiocache, and Redis through the one client factory).

This is the only module that imports aiocache (0.12.3 is its last release), so replacing it
touches one file. Values are opaque bytes (JSON written by `entry.py`): nothing here ever
unpickles.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from aiocache import Cache as _AioCache
from aiocache.serializers import BaseSerializer

from asgi_llm.redis_client import connect, is_redis_url


class CacheStore(Protocol):
    """Bytes by key with a TTL. Raises on backend trouble; the middleware turns that into a
    bypass (the cache fails open)."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def purge(self, pattern: str) -> int:
        """Delete the keys matching a glob of our own making (hex digests and `*` only)."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class FlightLock(Protocol):
    """A short lease shared by replicas: one of them calls upstream for identical misses."""

    async def try_lock(self, key: str, token: str, ttl_s: float) -> bool: ...

    async def unlock(self, key: str, token: str) -> None: ...


class _Bytes(BaseSerializer):
    DEFAULT_ENCODING = None  # bytes in, bytes out: no decode in aiocache's redis backend

    def dumps(self, value: Any) -> Any:
        return value

    def loads(self, value: Any) -> Any:
        return value


class MemoryStore:
    """aiocache's in-process cache, bounded: aiocache's own memory backend grows without
    limit, so an LRU over entries and bytes sits in front of it.

    Expiry is ours too, checked on read: aiocache's memory TTL schedules one event-loop
    timer per entry (a TimerHandle and a Context each), so a full cache kept 20-30k more
    objects for the garbage collector to walk, and its pauses showed in the p99.
    """

    def __init__(
        self, *, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        # No per-operation timeout: aiocache would wrap every dict lookup in wait_for (a task).
        self._cache = _AioCache(_AioCache.MEMORY, serializer=_Bytes(), timeout=None)
        self._meta: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (size, expires)
        self._bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock

    def __len__(self) -> int:
        return len(self._meta)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    async def get(self, key: str) -> bytes | None:
        meta = self._meta.get(key)
        if meta is None:
            return None
        if meta[1] <= self._clock():
            await self._drop(key)
            return None
        # The backend's own `_get`, not the decorated `get`: the decorators add nothing here
        # (no plugins, no timeout, no namespace) but read os.environ["AIOCACHE_DISABLE"] on
        # every call, which was a third of a hit's cost. aiocache is pinned to 0.12.x, its
        # last release, so this internal method will not move.
        value: bytes | None = await self._cache._get(key, encoding=None)
        if value is None:
            self._forget(key)
            return None
        self._meta.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if len(value) > self._max_bytes:
            return
        self._forget(key)
        # An exact-size copy: orjson's bytes keep a 4 KiB allocation whatever their length
        # (measured: a 524-byte entry held 4,089 bytes), 8x the memory for a cache of
        # small answers.
        value = bytes(memoryview(value))
        await self._cache._set(key, value)  # undecorated, as in `get`; no TTL timer (above)
        self._meta[key] = (len(value), self._clock() + float(ttl_s))
        self._bytes += len(value)
        while len(self._meta) > self._max_entries or self._bytes > self._max_bytes:
            oldest, (size, _) = self._meta.popitem(last=False)
            self._bytes -= size
            await self._cache._delete(oldest)

    async def purge(self, pattern: str) -> int:
        match = _glob_matcher(pattern)
        doomed = [key for key in self._meta if match(key)]
        for key in doomed:
            await self._drop(key)
        return len(doomed)

    async def _drop(self, key: str) -> None:
        self._forget(key)
        await self._cache._delete(key)

    def _forget(self, key: str) -> None:
        meta = self._meta.pop(key, None)
        if meta is not None:
            self._bytes -= meta[0]

    async def aclose(self) -> None:
        await self._cache.clear()
        self._meta.clear()
        self._bytes = 0


class RedisStore:
    """Redis shared by a fleet: one server, a Redis Cluster or a Sentinel-managed primary, through
    the one client factory (`asgi_llm.redis_client`). aiocache 0.12's Redis backend makes its
    own single-server client, so entries go through our client directly (GET, PSETEX: aiocache
    added nothing on this path but its 5 s default timeout). Every command is bounded by
    `timeout_s`; the middleware turns any failure into a miss and skips the write."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        self._client = connect(url, timeout=timeout_s)

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._client.get(key)
        return value

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self._client.set(key, value, px=max(1, round(float(ttl_s) * 1000)))

    async def purge(self, pattern: str) -> int:
        # SCAN, never KEYS: a purge must not stall the Redis every replica depends on.
        deleted = 0
        batch: list[bytes] = []
        # On a cluster SCAN visits every primary, and the keys of one batch live in many slots:
        # one UNLINK each, pipelined (the pipeline sends each node its own).
        async for key in self._client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await self._unlink(batch)
                batch.clear()
        if batch:
            deleted += await self._unlink(batch)
        return deleted

    async def _unlink(self, keys: list[bytes]) -> int:
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.execute_command("UNLINK", key)  # the cluster pipeline's own unlink() is async
            return sum(int(n) for n in await pipe.execute())

    async def try_lock(self, key: str, token: str, ttl_s: float) -> bool:
        return bool(await self._client.set(key, token, nx=True, px=max(1, int(ttl_s * 1000))))

    async def unlock(self, key: str, token: str) -> None:
        await self._client.eval(_RELEASE, 1, key, token)

    @property
    def client(self) -> Any:
        """The redis-py client, for the semantic index's fleet sync (same pool)."""
        return self._client

    async def aclose(self) -> None:
        await self._client.aclose()  # and its pools


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def _glob_matcher(pattern: str) -> Callable[[str], bool]:
    """Our patterns are `prefix:e:<hex|*>:<hex|*>:*`: a `*` spans one segment or the rest."""
    head, star, _ = pattern.partition("*")
    if not star:
        return lambda key: key == pattern
    segments = pattern.split(":")

    def match(key: str) -> bool:
        if not key.startswith(head):
            return False
        parts = key.split(":", len(segments) - 1)
        if len(parts) < len(segments):
            return False
        return all(s == "*" or s == p for s, p in zip(segments, parts, strict=False))

    return match


def open_store(url: str, *, max_entries: int, max_bytes: int, timeout_s: float) -> CacheStore:
    """The store for a backend URI: `memory://` or a Redis URL (docs/fleet.md)."""
    if urlsplit(url).scheme == "memory":
        return MemoryStore(max_entries=max_entries, max_bytes=max_bytes)
    if is_redis_url(url):
        return RedisStore(url, timeout_s=timeout_s)
    raise ValueError(f"unknown cache backend {url!r} (use memory:// or redis://)")


def new_token() -> str:
    return os.urandom(12).hex()


__all__ = ["CacheStore", "FlightLock", "MemoryStore", "RedisStore", "new_token", "open_store"]
