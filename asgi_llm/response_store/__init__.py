"""Stored Responses API responses (`store: true`), by tenant namespace and id.

`open_store(url, ...)`, given the `responses` config section's fields, returns a ResponseStore:
memory:// (one process, bounded) or Redis (shared by a fleet). Whoever opens a store closes
it (`aclose`); everyone else puts, gets and deletes through the Protocol in `base`.
"""

from asgi_llm.response_store.base import (
    RECORD_VERSION,
    ResponseStore,
    ResponseStoreUnavailable,
    StoredResponse,
    valid_id,
)
from asgi_llm.response_store.factory import open_store
from asgi_llm.response_store.memory import MemoryResponseStore
from asgi_llm.response_store.redis import RedisResponseStore

__all__ = [
    "RECORD_VERSION",
    "MemoryResponseStore",
    "RedisResponseStore",
    "ResponseStore",
    "ResponseStoreUnavailable",
    "StoredResponse",
    "open_store",
    "valid_id",
]
