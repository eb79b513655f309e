"""Cooldowns shared by a fleet through Redis (`routing.redis_url`).

Each replica still counts failures itself; what the fleet shares is the decision. When a
replica cools a deployment down it publishes `{"id", "until"}` (wall-clock end) on
`{<prefix>}:cooldowns` and leaves `{<prefix>}:cool:<id>` to expire at that time (one hash
tag: on a Redis Cluster the catch-up's MGET reads one slot, and the channel is sharded); when a
deployment answers well again it publishes `until: 0` and deletes the key. Every replica
listens and applies what the others decided, and on (re)connecting reads the keys of the
deployments it knows, so a replica that starts late or lost Redis for a while catches up.

Nothing here is on the request path: announcements are sent by a background task, and a
Redis outage leaves each replica with its own (per-process) cooldowns, as without Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import orjson

from asgi_llm.redis_channels import publish
from asgi_llm.redis_client import slot_tag
from asgi_llm.routing.health import CooldownTracker

log = logging.getLogger("asgi_llm.routing")

MAX_NOTICE_BYTES = 1024
_BACKOFF_MAX_S, _IDLE_S = 10.0, 1.0


class FleetCooldowns:
    def __init__(
        self,
        tracker: CooldownTracker,
        settings: Callable[[], tuple[str | None, str]],
        known: Callable[[], set[str]],
        *,
        connect: Callable[[str], Any] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.tracker = tracker
        self._settings = settings  # () -> (redis_url or None, prefix), from the config in force
        self._known = known  # () -> deployment ids in the config in force
        self._connect = connect
        self._wall = wall
        self.replica_id = os.urandom(6).hex()
        self._pending: dict[str, float] = {}  # deployment id -> until (0: recovered), to send
        self._live: tuple[Any, str] | None = None  # (client, prefix) of the last connection
        self._flushing: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()
        self.received = 0  # notices applied from other replicas (tests, metrics)

    # -- what this replica decided ---------------------------------------------------------
    def cooled(self, deployment_id: str, seconds: float) -> None:
        self._queue(deployment_id, self._wall() + seconds)

    def recovered(self, deployment_id: str) -> None:
        self._queue(deployment_id, 0.0)

    def _queue(self, deployment_id: str, until: float) -> None:
        if self._settings()[0] is None:
            return
        self._pending[deployment_id] = until  # the latest decision per deployment wins
        if self.subscribed.is_set() and self._flushing is None:  # send now, off the request path
            with contextlib.suppress(RuntimeError):
                self._flushing = asyncio.get_running_loop().create_task(self._flush_live())

    async def _flush_live(self) -> None:
        try:
            if self.subscribed.is_set() and self._live is not None:
                await self._flush(*self._live)
        except Exception as exc:  # noqa: BLE001 - the run loop retries what is still pending
            log.debug("shared cooldowns: send failed (%s)", exc.__class__.__name__)
        finally:
            self._flushing = None

    # -- the background task -----------------------------------------------------------------
    async def run(self) -> None:
        """Subscribe and publish until cancelled; reconnects with backoff."""
        from asgi_llm.redis_channels import subscribe_forever

        await subscribe_forever(
            self._target,
            self._on_notice,
            name="shared cooldowns",
            subscribed=self.subscribed,
            connect_to=self._connect,
            on_connect=self._connected,
            on_tick=self._flush_pending,
            poll_s=0.2,
            max_message_bytes=MAX_NOTICE_BYTES,
            backoff_max_s=_BACKOFF_MAX_S,
            idle_s=_IDLE_S,
        )

    def _target(self) -> tuple[str, str] | None:
        url, prefix = self._settings()
        if url is None:
            self._pending.clear()
            return None
        return url, f"{slot_tag(prefix)}:cooldowns"

    async def _connected(self, client: Any, reconnected: bool) -> None:
        self._live = (client, slot_tag(self._settings()[1]))
        await self._catch_up(*self._live)

    async def _flush_pending(self, client: Any) -> None:
        await self._flush(client, slot_tag(self._settings()[1]))

    async def _catch_up(self, client: Any, prefix: str) -> None:
        known = sorted(self._known())
        if not known:
            return
        values = await client.mget([f"{prefix}:cool:{d}" for d in known])
        for deployment_id, value in zip(known, values, strict=True):
            if value is not None:
                with contextlib.suppress(ValueError):
                    self._apply(deployment_id, float(value))

    async def _flush(self, client: Any, prefix: str) -> None:
        while self._pending:
            deployment_id, until = self._pending.popitem()
            try:
                await self._send(client, prefix, deployment_id, until)
            except BaseException:
                self._pending.setdefault(deployment_id, until)  # not sent: kept for a retry
                raise

    async def _send(self, client: Any, prefix: str, deployment_id: str, until: float) -> None:
        notice = orjson.dumps({"from": self.replica_id, "id": deployment_id, "until": until})
        key = f"{prefix}:cool:{deployment_id}"
        async with client.pipeline(transaction=False) as pipe:
            left_ms = int((until - self._wall()) * 1000)
            if until and left_ms > 0:
                pipe.set(key, repr(until), px=left_ms)
            else:
                pipe.delete(key)
            publish(pipe, f"{prefix}:cooldowns", notice, client=client)
            await pipe.execute()

    # -- what the others decided -------------------------------------------------------------
    async def _on_notice(self, data: bytes) -> None:
        try:
            notice = orjson.loads(data)
            sender, deployment_id, until = notice["from"], notice["id"], float(notice["until"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return  # not ours: ignored
        if sender == self.replica_id or deployment_id not in self._known():
            return
        self._apply(deployment_id, until)
        self.received += 1

    def _apply(self, deployment_id: str, until: float) -> None:
        if until <= 0:
            self.tracker.success(deployment_id)
            return
        left = until - self._wall()
        if left > 0:
            self.tracker.cool_for(deployment_id, left)
