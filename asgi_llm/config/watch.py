"""Live config: the config file watcher and the fleet's Redis reload channel.

`LiveConfig` wraps the app (build_app puts it outermost) and runs both for as long as the
app lives: started on lifespan startup, stopped on shutdown. Each only asks the
ConfigManager to reload; the manager validates the whole candidate before the swap.

- FileWatcher polls the file every `reload.poll_interval_s` (0.5 s): it reads the path, so
  symlinks are followed and a Kubernetes `..data` swap or an editor's atomic rename look
  like any edit. It reloads when the content changed *and* stayed the same over two polls
  (debounce; a file still being written is never loaded), and only once per content: a file
  that fails to load is not retried until it changes again.
- RedisReloadChannel subscribes to `reload.channel` on `reload.redis_url`. A notice makes
  every replica reload its own file; a successful reload asked through the admin API on one
  replica publishes one. After an outage it reloads once, for the notices it may have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from asgi_llm.config.manager import MAX_CONFIG_BYTES, ConfigManager, ReloadResult
from asgi_llm.lifespan import run_lifespan
from asgi_llm.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("asgi_llm.config")

MAX_NOTICE_BYTES = 1024
_BACKOFF_MAX_S = 30.0
_IDLE_S = 1.0  # how often a disabled watcher looks whether it was turned on


def _read(path: str) -> bytes | None:
    """The file's bytes, or None while it is missing (between a delete and a rename)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return None


class FileWatcher:
    """Polls the config file; reloads a changed content once it holds still for one poll."""

    def __init__(self, manager: ConfigManager) -> None:
        self.manager = manager
        self._seen: str | None = None  # digest of the content last loaded or refused
        self._pending: str | None = None  # a new digest waiting to be seen again
        self._path: str | None = None

    async def prime(self) -> None:
        """Take the file as it is now as already loaded (it is what the app started with)."""
        self._path = self.manager.source
        if self._path is not None:
            content = await asyncio.to_thread(_read, self._path)
            self._seen = None if content is None else _digest(content)

    async def poll(self) -> ReloadResult | None:
        """One look at the file; the reload's result when this look caused one."""
        path = self.manager.source
        if path is None:
            return None
        if path != self._path:  # never happens today: a reload keeps the source path
            self._path, self._pending = path, None
        try:
            content = await asyncio.to_thread(_read, path)
        except OSError as exc:  # unreadable for a moment (permissions mid-swap): next poll
            log.debug("config watch: cannot read %s: %s", path, exc.__class__.__name__)
            return None
        if content is None:
            return None
        digest = _digest(content)
        if digest == self._seen:
            self._pending = None
            return None
        if digest != self._pending:
            self._pending = digest  # changed: load it once it holds still for one poll
            return None
        self._seen, self._pending = digest, None
        return await self.manager.reload_async(text=content, origin="file")

    async def run(self) -> None:
        """Poll until cancelled (call `prime` first: LiveConfig does, before serving)."""
        while True:
            settings = self.manager.current.reload
            await asyncio.sleep(settings.poll_interval_s if settings.watch else _IDLE_S)
            if self.manager.current.reload.watch:
                try:
                    await self.poll()
                except Exception:  # the watcher outlives any surprise; the old config serves
                    log.exception("config watch: poll failed")


class RedisReloadChannel:
    """Reload notices between replicas over Redis pub/sub (fail-open: Redis down only means
    no notices; each replica keeps serving the config it has)."""

    def __init__(
        self,
        manager: ConfigManager,
        *,
        connect: Callable[..., Any] | None = None,
        replica_id: str | None = None,
    ) -> None:
        self.manager = manager
        self.replica_id = replica_id or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self._connect = connect
        self._publisher: Any = None
        self._publisher_url: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.subscribed = asyncio.Event()
        self.notices_received = 0
        self.attach()

    def attach(self) -> None:
        """Publish after admin reloads (again after `aclose`, e.g. a second lifespan)."""
        if self._observe not in self.manager.reload_observers:
            self.manager.reload_observers.append(self._observe)

    def _client(self, url: str) -> Any:
        if self._connect is not None:
            return self._connect(url)
        from asgi_llm.redis_client import connect

        return connect(url)

    # -- publishing -------------------------------------------------------------------
    def _observe(self, result: ReloadResult) -> None:
        # Only a reload someone asked this replica for goes to the fleet: a file change is
        # seen by each replica's own watcher, and a notice must not echo around the fleet.
        if result.ok and result.origin == "admin" and self.manager.current.reload.redis_url:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to publish from
                self._spawn(self.publish())

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def publish(self) -> bool:
        """Tell every replica to reload its file; False when Redis could not be reached."""
        from asgi_llm.redis_channels import publish
        from asgi_llm.redis_client import errors

        settings = self.manager.current.reload
        if settings.redis_url is None:
            return False
        if self._publisher_url != settings.redis_url:
            await self._close_publisher()
            self._publisher, self._publisher_url = self._client(settings.redis_url), settings.redis_url
        notice = orjson.dumps({"from": self.replica_id, "at": time.time()})
        try:
            await publish(self._publisher, settings.channel, notice)
        except errors() as exc:
            log.warning("config reload notice not published (Redis: %s)", exc.__class__.__name__)
            return False
        return True

    async def _close_publisher(self) -> None:
        publisher, self._publisher, self._publisher_url = self._publisher, None, None
        if publisher is not None:
            with contextlib.suppress(Exception):
                await publisher.aclose()

    # -- subscribing ------------------------------------------------------------------
    async def run(self) -> None:
        from asgi_llm.redis_channels import subscribe_forever

        async def catch_up(client: Any, reconnected: bool) -> None:
            if reconnected:  # notices sent while we were away are lost: catch up
                await self.manager.reload_async(origin="redis")

        await subscribe_forever(
            self._target,
            self._on_notice,
            name="config reload channel",
            subscribed=self.subscribed,
            connect_to=self._connect,
            on_connect=catch_up,
            max_message_bytes=MAX_NOTICE_BYTES,
            backoff_max_s=_BACKOFF_MAX_S,
            idle_s=_IDLE_S,
        )

    def _target(self) -> tuple[str, str] | None:
        settings = self.manager.current.reload
        return None if settings.redis_url is None else (settings.redis_url, settings.channel)

    async def _on_notice(self, data: bytes) -> None:
        try:
            sender = orjson.loads(data).get("from")
        except (orjson.JSONDecodeError, AttributeError):
            sender = None  # `PUBLISH asgi_llm:config reload` by hand is a notice too
        if sender == self.replica_id:
            return
        self.notices_received += 1
        await self.manager.reload_async(origin="redis")

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self._close_publisher()
        with contextlib.suppress(ValueError):
            self.manager.reload_observers.remove(self._observe)


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class ConfigWatch:
    """The file watcher and the Redis reload channel, run from startup to shutdown. A service
    of the stack (`build_app` runs it); `LiveConfig` runs one around any other app."""

    def __init__(self, configs: ConfigManager) -> None:
        self.configs = configs
        self.file_watcher = FileWatcher(configs)
        self.channel = RedisReloadChannel(configs)
        self._tasks: list[asyncio.Task[None]] = []

    async def startup(self) -> None:
        if self._tasks or self.configs.source is None:
            return  # nothing to watch: the embedded default or a config built in code
        await self.file_watcher.prime()  # before the app serves: no edit can slip in between
        self.channel.attach()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self.file_watcher.run(), name="asgi-llm config watch"),
            loop.create_task(self.channel.run(), name="asgi-llm config channel"),
        ]

    async def shutdown(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.channel.aclose()


class LiveConfig:
    """Runs a `ConfigWatch` while the app inside lives: mount it around any app holding a
    ConfigManager to get live reloads. Without lifespan events (some test clients) nothing is
    started: reloads then come from the admin API or `ConfigManager.reload()` only.
    """

    def __init__(self, app: ASGIApp, *, config: ConfigManager) -> None:
        self.app = app
        self.configs = config
        self.watch = ConfigWatch(config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            hooks = (self.watch.startup, self.watch.shutdown)
            await run_lifespan(scope, receive, send, self.app, "LiveConfig", hooks)
            return
        await self.app(scope, receive, send)


__all__ = ["ConfigWatch", "FileWatcher", "LiveConfig", "RedisReloadChannel"]
