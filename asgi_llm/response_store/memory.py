"""Stored responses in this process: bounded by entries and bytes, least recently used first.

Records are kept as their JSON bytes, not as objects: the byte budget is then exact, and a
caller that mutates what `get` returned cannot change what the next `get` returns (the Redis
store behaves the same way, so tests of one hold for the other).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from asgi_llm.response_store.base import StoredResponse, check_record, valid_id

log = logging.getLogger("asgi_llm.response_store")

_Key = tuple[str, str]  # (namespace, id): another tenant's id is another key


class MemoryResponseStore:
    """One replica's store: a response stored here is not seen by other replicas or workers
    (use redis:// for those). Expiry is checked on read; eviction keeps the bounds on write."""

    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be at least 1")
        self._entries: OrderedDict[_Key, tuple[bytes, float]] = OrderedDict()  # -> (json, expires)
        self._bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    async def put(self, record: StoredResponse, ttl_s: float) -> None:
        check_record(record, ttl_s)
        raw = record.to_json()
        key = (record.namespace, record.id)
        self._drop(key)
        if len(raw) > self._max_bytes:
            # Storing it would evict everything else and still not fit: it is not kept, and a
            # later previous_response_id naming it gets 404, as an evicted one would.
            log.warning(
                "response %s not stored: %d bytes exceed responses.max_bytes (%d)",
                record.id,
                len(raw),
                self._max_bytes,
            )
            return
        self._entries[key] = (raw, self._clock() + float(ttl_s))
        self._bytes += len(raw)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            _, (evicted, _) = self._entries.popitem(last=False)
            self._bytes -= len(evicted)

    async def get(self, namespace: str, response_id: str) -> StoredResponse | None:
        key = (namespace, response_id)
        entry = self._live(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return StoredResponse.from_json(entry)  # what put wrote: it decodes

    async def delete(self, namespace: str, response_id: str) -> bool:
        key = (namespace, response_id)
        found = self._live(key) is not None
        self._drop(key)
        return found

    async def aclose(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _live(self, key: _Key) -> bytes | None:
        """The entry's bytes, or None when absent, expired (then dropped) or not a valid id."""
        if not valid_id(key[1]):
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        raw, expires = entry
        if expires <= self._clock():
            self._drop(key)
            return None
        return raw

    def _drop(self, key: _Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[0])


__all__ = ["MemoryResponseStore"]
