"""Run an asgi-llm app's lifespan from somewhere else: inside your own app's lifespan when
you mount the stack (Starlette does not forward lifespan events to mounted apps)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_llm.types import ASGIApp, Message, Scope


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
