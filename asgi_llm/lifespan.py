"""Lifespan of an asgi-llm stack.

`run_lifespan` is how every layer takes part: the outermost asgi-llm layer of a stack owns
one `LifespanHooks` for the lifespan scope, the layers inside add their hooks to it, and it
runs them when the server says so (startups outermost first, shutdowns in reverse). A
startup that raises is answered with one `lifespan.startup.failed` carrying the reason, as
asgi-lifespan and Starlette do: the server then exits with that message instead of serving
on without lifespan (hypercorn's "continuing without Lifespan support", every request 500).

`lifespan(app)` runs an app's lifespan from somewhere else: inside your own app's lifespan
when you mount the stack (Starlette does not forward lifespan events to mounted apps).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from asgi_llm.redact import redact_url_passwords
from asgi_llm.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("asgi_llm")

Hook = Callable[[], Awaitable[None]]
_SCOPE_KEY = "asgi_llm.lifespan"  # the stack's LifespanHooks, on the lifespan scope


class StartupFailed(Exception):
    """Raised into the inner app's `receive` once `lifespan.startup.failed` is sent: it
    unwinds the inner app's lifespan, and the layer that owns the hooks swallows it."""


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a layer sits, for the order check at startup: its `kind`, its class name (for
    the message), and which kinds must be outside it when present ({kind: why})."""

    kind: str
    name: str
    requires: Callable[[], dict[str, str]]


def order_error(placements: list[Placement]) -> str | None:
    """Why this order (outermost first) cannot work, or None. A required layer may be left
    out altogether; it must not sit inside the layer that needs it."""
    for index, placement in enumerate(placements):
        needs = placement.requires()
        for inner in placements[index + 1 :]:
            why = needs.get(inner.kind)
            if why is not None:
                return (
                    f"{placement.name} is placed outside {inner.name}, but it needs what "
                    f"{inner.name} finds ({why}): put {inner.name} before it (outer) in the "
                    "middleware list."
                )
    return None


@dataclass(frozen=True, slots=True)
class _Hooks:
    name: str
    startup: Hook
    shutdown: Hook


class LifespanHooks:
    """One stack's hooks for one lifespan scope; wraps the server's receive and send."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._hooks: list[_Hooks] = []
        self._started: list[_Hooks] = []
        self.placements: list[Placement] = []  # every asgi-llm layer, outermost first
        self.failure: str | None = None

    def add(self, name: str, startup: Hook, shutdown: Hook) -> None:
        self._hooks.append(_Hooks(name, startup, shutdown))

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "lifespan.startup":
            await self._start()
        elif message["type"] == "lifespan.shutdown":
            await self._stop()
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind.startswith("lifespan.startup."):
            if self.failure is not None:
                return  # the server has its answer: an inner app's second one is dropped
            if kind == "lifespan.startup.failed":  # the inner app's own startup failed:
                self.failure = str(message.get("message", ""))
                await self._stop()  # what the layers opened is closed, as for ours
        await self._send(message)

    async def _start(self) -> None:
        misplaced = order_error(self.placements)
        if misplaced is not None:
            self.failure = misplaced
            log.error("%s", misplaced)
            await self._send({"type": "lifespan.startup.failed", "message": misplaced})
            raise StartupFailed(misplaced)
        for hooks in self._hooks:
            try:
                await hooks.startup()
            except Exception as exc:
                # Client libraries put the URL in their errors, password included.
                reason = redact_url_passwords(f"{type(exc).__name__}: {exc}")
                self.failure = f"{hooks.name} startup failed: {reason}"
                log.error("%s", self.failure)
                trace = redact_url_passwords("".join(traceback.format_exception(exc)))
                log.debug("startup failure of %s:\n%s", hooks.name, trace)
                await self._stop()
                # Nothing may suspend after this send: hypercorn raises from it and expects
                # the lifespan task to be done when it next looks.
                await self._send({"type": "lifespan.startup.failed", "message": self.failure})
                raise StartupFailed(self.failure) from exc
            self._started.append(hooks)

    async def _stop(self) -> None:
        """Shut down what started, innermost first; one hook failing does not keep the
        others' clients open."""
        started, self._started = self._started, []
        for hooks in reversed(started):
            try:
                await hooks.shutdown()
            except Exception:
                log.exception("%s shutdown failed", hooks.name)


async def run_lifespan(
    scope: Scope,
    receive: Receive,
    send: Send,
    app: ASGIApp,
    name: str,
    hooks: tuple[Hook, Hook] | None,
    placement: Placement | None = None,
) -> None:
    """A layer's part in a lifespan scope: add its (startup, shutdown) hooks, if it has any,
    and its placement for the order check, then call the app inside it. The outermost
    asgi-llm layer also owns the stack's hooks."""
    owner = scope.get(_SCOPE_KEY)
    if isinstance(owner, LifespanHooks):
        if hooks is not None:
            owner.add(name, *hooks)
        if placement is not None:
            owner.placements.append(placement)
        await app(scope, receive, send)
        return
    owner = scope[_SCOPE_KEY] = LifespanHooks(receive, send)
    if hooks is not None:
        owner.add(name, *hooks)
    if placement is not None:
        owner.placements.append(placement)
    try:
        await app(scope, owner.receive, owner.send)
    except StartupFailed:
        pass  # reported as lifespan.startup.failed; the server decides what comes next


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """`async with lifespan(llm_app): ...` starts the app's layers and, on exit, closes their
    clients, pools and files.

        @asynccontextmanager
        async def my_lifespan(app):
            async with asgi_llm.lifespan(llm):
                yield
    """
    startup_done = asyncio.Event()
    shutdown = asyncio.Event()
    shutdown_done = asyncio.Event()
    failure: list[str] = []
    queue = [{"type": "lifespan.startup"}]

    async def receive() -> Message:
        if queue:
            return queue.pop()
        await shutdown.wait()
        return {"type": "lifespan.shutdown"}

    async def send(message: Message) -> None:
        kind = message["type"]
        if kind.startswith("lifespan.startup."):
            if kind.endswith("failed"):
                failure.append(message.get("message", ""))
            startup_done.set()
        elif kind.startswith("lifespan.shutdown."):
            shutdown_done.set()

    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task: asyncio.Task[None] = asyncio.ensure_future(app(scope, receive, send))
    waiter = asyncio.ensure_future(startup_done.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done() and not startup_done.is_set():
        error = task.exception()  # an app without lifespan support raises on the scope
        raise RuntimeError(f"the app does not run lifespan: {error!r}") from error
    if failure:
        if not task.done():  # an app that waits on after failing: no shutdown is coming
            task.cancel()
            await asyncio.wait({task})
        raise RuntimeError(f"lifespan startup failed: {failure[0]}")
    try:
        yield
    finally:
        shutdown.set()
        if not task.done():
            await asyncio.wait({task}, timeout=10)
        if not task.done():
            task.cancel()
        elif not task.cancelled() and task.exception() is not None:
            raise RuntimeError("lifespan shutdown failed") from task.exception()
