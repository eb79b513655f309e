"""hypercorn under `asgi-llm serve --server hypercorn` (the one module that imports it):
h11 for HTTP/1.1 and cleartext HTTP/2 (prior knowledge) on the same port."""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app

from asgi_llm.server.guard import MAX_HEADER_BYTES, RequestGuard

if TYPE_CHECKING:
    from asgi_llm.server.workers import Settings


def config(settings: Settings) -> Config:
    hc = Config()
    hc.accesslog = None  # RequestGuard writes the access line
    # A logger object, not a path: hypercorn then adds no handler of its own, and its lines
    # go through the formatter `asgi_llm.logs.configure` installs.
    hc.errorlog = logging.getLogger("hypercorn.error")
    # Hypercorn holds a connection the client closed while idle until this runs out (its
    # task and fd linger): long values pile up sockets under connection churn.
    hc.keep_alive_timeout = settings.keep_alive
    # Hypercorn waits this long for connections after the drain: room for the error events.
    hc.graceful_timeout = settings.drain_timeout + 2
    hc.h11_max_incomplete_size = 2 * MAX_HEADER_BYTES  # slow or huge header blocks
    return hc


async def run(
    app: RequestGuard,
    sockets: list[socket.socket],
    settings: Settings,
    shutdown_trigger: Callable[[], Awaitable[None]],
) -> None:
    hc = config(settings)
    wrapped: Any = wrap_app(app, hc.wsgi_max_body_size, None)  # type: ignore[arg-type]
    given = Sockets(secure_sockets=[], insecure_sockets=sockets, quic_sockets=[])
    await worker_serve(wrapped, hc, sockets=given, shutdown_trigger=shutdown_trigger)
