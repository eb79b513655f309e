"""FleetSync: every replica's semantic index kept in step through one Redis stream.

The answers themselves are already shared (the exact tier's Redis entries); what each
replica lacks is the *vector* pointing at them. A replica that indexes a question appends
it to the stream (vector as float32 bytes, guards recomputed on arrival); every replica
tails the stream with a blocking XREAD, so a hit on one is a hit on all within milliseconds,
and a new replica replays the stream (trimmed to about `max_entries`) when it starts.
Purges travel the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import numpy as np

from asgi_llm.cache.guards import features
from asgi_llm.cache.index import IndexItem, VectorIndex
from asgi_llm.redis_client import connect, errors

log = logging.getLogger("asgi_llm.cache")
BLOCK_MS = 1000
RETRY_S = 1.0


class FleetSync:
    def __init__(self, url: str, stream: str, max_entries: int) -> None:
        self.url = url
        self.stream = stream
        self.max_entries = max_entries
        self.origin = os.urandom(6).hex()
        self.applied = 0
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._last_id = "0"

    async def start(self, index: VectorIndex) -> None:
        if self._task is not None:
            return
        # Its own client: a blocking XREAD needs a socket timeout longer than the block.
        self._client = connect(self.url, timeout=BLOCK_MS / 1000 + 2)
        self._task = asyncio.get_running_loop().create_task(self._tail(index))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def publish(self, item: IndexItem, vector: np.ndarray) -> None:
        if self._client is None:
            return
        fields = {
            "op": "add",
            "origin": self.origin,
            "id": item.id,
            "digest": item.digest,
            "group": item.group,
            "ns": item.namespace,
            "model": item.model,
            "endpoint": item.endpoint,
            "text": item.text,
            "expires": repr(item.expires),
            "vector": np.asarray(vector, dtype=np.float32).tobytes(),
        }
        await self._client.xadd(self.stream, fields, maxlen=self.max_entries, approximate=True)

    async def publish_purge(self, namespace: str | None, model: str | None) -> None:
        if self._client is None:
            return
        await self._client.xadd(
            self.stream,
            {"op": "purge", "origin": self.origin, "ns": namespace or "", "model": model or ""},
            maxlen=self.max_entries,
            approximate=True,
        )

    async def _tail(self, index: VectorIndex) -> None:
        while True:
            try:
                replies = await self._client.xread({self.stream: self._last_id}, count=500, block=BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except errors() as exc:
                log.warning("semantic fleet sync: Redis unavailable (%s)", exc.__class__.__name__)
                await asyncio.sleep(RETRY_S)
                continue
            for _, messages in replies or ():
                for message_id, fields in messages:
                    self._last_id = message_id.decode() if isinstance(message_id, bytes) else message_id
                    try:
                        self._apply(index, fields)
                    except (KeyError, ValueError, UnicodeDecodeError) as exc:
                        log.warning("semantic fleet sync: bad message ignored (%s)", exc)

    def _apply(self, index: VectorIndex, fields: dict[bytes, bytes]) -> None:
        get = {k.decode(): v for k, v in fields.items()}
        op = get["op"].decode()
        if get["origin"].decode() == self.origin:
            return  # our own: already applied locally
        if op == "purge":
            index.remove(get["ns"].decode() or None, get["model"].decode() or None)
        elif op == "add":
            expires = float(get["expires"].decode())
            if expires <= time.time():
                return
            vector = np.frombuffer(get["vector"], dtype=np.float32)
            if vector.shape[0] != getattr(index, "dim", vector.shape[0]):
                raise ValueError("vector of another model")
            text = get["text"].decode()
            index.add(
                IndexItem(
                    id=get["id"].decode(),
                    digest=get["digest"].decode(),
                    group=get["group"].decode(),
                    namespace=get["ns"].decode(),
                    model=get["model"].decode(),
                    endpoint=get["endpoint"].decode(),
                    text=text,
                    features=features(text),
                    expires=expires,
                ),
                vector.copy(),
            )
        else:
            return
        self.applied += 1


__all__ = ["FleetSync"]
