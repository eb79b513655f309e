"""Single flight: identical concurrent misses make one upstream call.

Within a replica the first miss leads and the others wait on an event; across replicas the
leader also takes a short Redis lease (SET NX PX), and a replica that finds the lease taken
polls the store until the entry appears or the lease is gone. Waiting is bounded: a follower
whose leader failed, or stored nothing, goes upstream itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from asgi_llm.cache.store import FlightLock, new_token

log = logging.getLogger("asgi_llm.cache")
POLL_S = 0.02


class SingleFlight:
    def __init__(self) -> None:
        self._leaders: dict[str, asyncio.Event] = {}

    def __len__(self) -> int:
        return len(self._leaders)

    @asynccontextmanager
    async def lead_or_follow(
        self,
        key: str,
        wait_s: float,
        lock: FlightLock | None = None,
        lock_key: str | None = None,
        ready: Callable[[], Awaitable[Any]] | None = None,
    ) -> AsyncIterator[bool]:
        """Yields True to the one request that should call upstream, False to a follower
        once the leader is done (it then looks the entry up; `ready` lets a replica that
        lost the fleet-wide lease stop polling as soon as the entry is there)."""
        done = self._leaders.get(key)
        if done is not None:
            try:
                await asyncio.wait_for(done.wait(), wait_s)
            except TimeoutError:
                pass
            yield False
            return
        done = self._leaders[key] = asyncio.Event()
        token = new_token() if lock is not None else ""  # a fleet lease only: no syscall otherwise
        locked = False
        try:
            if lock is not None and lock_key is not None:
                locked = await self._fleet_lead(lock, lock_key, token, wait_s, ready)
                if not locked:
                    yield False  # another replica led; our followers look the entry up too
                    return
            yield True
        finally:
            del self._leaders[key]
            done.set()
            if locked and lock is not None and lock_key is not None:
                try:
                    await lock.unlock(lock_key, token)
                except Exception as exc:  # noqa: BLE001 - the lease expires by itself
                    log.warning("cache lock release failed: %s", exc.__class__.__name__)

    @staticmethod
    async def _fleet_lead(
        lock: FlightLock, lock_key: str, token: str, wait_s: float, ready: Callable[[], Awaitable[Any]] | None
    ) -> bool:
        """True once this replica holds the lease; False when another replica's leader
        finished (or gave up) while we polled."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            try:
                if await lock.try_lock(lock_key, token, wait_s):
                    # The lease may have just been freed by a leader that stored the entry.
                    if ready is not None and await ready() is not None:
                        await lock.unlock(lock_key, token)
                        return False
                    return True
            except Exception as exc:  # noqa: BLE001 - no fleet lease: lead for this replica
                log.warning("cache lock unavailable: %s", exc.__class__.__name__)
                return True
            if ready is not None and await ready() is not None:
                return False
            if loop.time() >= deadline:
                return True  # the lease is stuck: stop waiting, call upstream ourselves
            await asyncio.sleep(POLL_S)


__all__ = ["SingleFlight"]
