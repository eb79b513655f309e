"""Single flight: identical concurrent misses make one upstream call.

Within a replica the first miss leads and the others wait on an event; across replicas the
leader also takes a short Redis lease (SET NX PX), and a replica that finds the lease taken
polls the store until the entry appears or the lease is gone. Waiting is bounded: a follower
whose leader failed, or stored nothing, goes upstream itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgi_llm.cache.store import FlightLock, new_token

log = logging.getLogger("asgi_llm.cache")
POLL_S = 0.02


class SingleFlight:
    def __init__(self) -> None:
        self._leaders: dict[str, asyncio.Event] = {}

    def __len__(self) -> int:
        return len(self._leaders)

    def lead_or_follow(
        self,
        key: str,
        wait_s: float,
        lock: FlightLock | None = None,
        lock_key: str | None = None,
        ready: Callable[[], Awaitable[Any]] | None = None,
    ) -> _Flight:
        """`async with` it: True to the one request that should call upstream, False to a
        follower once the leader is done (it then looks the entry up; `ready` lets a replica
        that lost the fleet-wide lease stop polling as soon as the entry is there). The
        leader's place is held until its block ends."""
        return _Flight(self, key, wait_s, lock, lock_key, ready)

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


class _Flight:
    """One request's turn at a key (a class, not @asynccontextmanager: its generator and
    wrapper cost every cache miss ~2 µs)."""

    __slots__ = ("_done", "_key", "_leaders", "_lock", "_lock_key", "_locked", "_ready", "_token", "_wait_s")

    def __init__(
        self,
        flight: SingleFlight,
        key: str,
        wait_s: float,
        lock: FlightLock | None,
        lock_key: str | None,
        ready: Callable[[], Awaitable[Any]] | None,
    ) -> None:
        self._leaders, self._key, self._wait_s = flight._leaders, key, wait_s
        self._lock, self._lock_key, self._ready = lock, lock_key, ready
        self._done: asyncio.Event | None = None  # set while this request holds the key
        self._token = ""
        self._locked = False

    async def __aenter__(self) -> bool:
        leaders, key = self._leaders, self._key
        done = leaders.get(key)
        if done is not None:
            try:
                await asyncio.wait_for(done.wait(), self._wait_s)
            except TimeoutError:
                pass
            return False
        self._done = leaders[key] = asyncio.Event()
        lock, lock_key = self._lock, self._lock_key
        if lock is None or lock_key is None:
            return True
        self._token = new_token()  # a fleet lease only: no syscall otherwise
        try:
            self._locked = await SingleFlight._fleet_lead(
                lock, lock_key, self._token, self._wait_s, self._ready
            )
        except BaseException:
            await self._release()
            raise
        return self._locked  # False: another replica led; our followers look the entry up too

    async def __aexit__(self, *exc_info: object) -> None:
        if self._done is not None:
            await self._release()

    async def _release(self) -> None:
        done, self._done = self._done, None
        assert done is not None
        del self._leaders[self._key]
        done.set()
        lock, lock_key = self._lock, self._lock_key
        if self._locked and lock is not None and lock_key is not None:
            try:
                await lock.unlock(lock_key, self._token)
            except Exception as exc:  # noqa: BLE001 - the lease expires by itself
                log.warning("cache lock release failed: %s", exc.__class__.__name__)


__all__ = ["SingleFlight"]
