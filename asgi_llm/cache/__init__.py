"""Response cache: exact match through aiocache (memory or Redis), semantic match optional.

See docs/caching.md for the key design, tenant isolation and the semantic settings.
"""

from asgi_llm.cache.keys import CacheKey, cache_key, namespace_for
from asgi_llm.cache.middleware import CacheMiddleware, CacheStats
from asgi_llm.cache.store import (
    CacheStore,
    FlightLock,
    MemoryStore,
    RedisStore,
    open_store,
)

__all__ = [
    "CacheKey",
    "CacheMiddleware",
    "CacheStats",
    "CacheStore",
    "FlightLock",
    "MemoryStore",
    "RedisStore",
    "cache_key",
    "namespace_for",
    "open_store",
]
