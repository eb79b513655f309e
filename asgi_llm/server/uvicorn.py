"""uvicorn under `asgi-llm serve --server uvicorn` (the one module that imports it): HTTP/1.1
parsed by httptools (llhttp, strict), on the worker's uvloop. No HTTP/2.

What uvicorn leaves to the app, done here: a cap on the request head (httptools has none:
`HeadCappedProtocol`), its signal handling replaced by the worker's (so SIGTERM drains the
stack first), no `X-Forwarded-*` rewriting of the client address (the limits have their own
`trusted_proxies`), no `server:` header and no access log of its own (RequestGuard's).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from asgi_llm.errors import error_body
from asgi_llm.server.guard import MAX_HEADER_BYTES, RequestGuard

if TYPE_CHECKING:
    from asgi_llm.server.workers import Settings

MAX_HEAD_BYTES = 2 * MAX_HEADER_BYTES  # past this an unfinished head is refused (as h11's cap)

_TOO_LARGE = error_body("Request headers are too large.", "invalid_request_error", "headers_too_large")
_REFUSAL = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TOO_LARGE), _TOO_LARGE)
)


LINGER_S = 5.0  # how long a refused request's unread body may still arrive


class _LingeringTransport:
    """The connection's transport, closing as nginx's `lingering_close` does: a response that
    ends a connection before its request body was read (413, 401 to a large body) is followed
    by a FIN, not a close. Closing a socket with unread bytes sends a RST, and the client may
    lose the response it had not read yet; so the rest of the body is read and dropped for up
    to LINGER_S, and the socket closes when the client closes its side."""

    def __init__(self, transport: asyncio.Transport, protocol: HeadCappedProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._lingering = False
        # What uvicorn calls per request, bound once (not looked up through __getattr__).
        self.write = transport.write
        self.get_extra_info = transport.get_extra_info
        self.pause_reading = transport.pause_reading
        self.resume_reading = transport.resume_reading

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._lingering or self._transport.is_closing()

    def close(self) -> None:
        transport = self._transport
        if self._lingering or transport.is_closing():
            return
        if self._protocol.in_head or not transport.can_write_eof():  # nothing left unread
            transport.close()
            return
        self._lingering = self._protocol.lingering = True
        transport.resume_reading()  # flow control may have paused it: the body is dropped
        transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_S, transport.close)


class HeadCappedProtocol(HttpToolsProtocol):
    """httptools buffers a request line and headers of any size until they end: a client
    can grow a worker's memory without limit. Bytes read while a head is unfinished are
    counted (up to its blank line), and past MAX_HEAD_BYTES the connection gets 431 and is
    closed. RequestGuard still gives the exact 431 for complete heads over 16 KiB. Its
    transport closes lingering (`_LingeringTransport`)."""

    _head_bytes = 0
    in_head = True  # no request, or the last one was read whole
    lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_LingeringTransport(transport, self))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return
        if self.in_head:
            end = data.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > MAX_HEAD_BYTES:
                self.transport.write(_REFUSAL)
                self.transport.close()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self.in_head, self._head_bytes = False, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.in_head = True
        super().on_message_complete()


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The worker's loop owns SIGTERM, SIGINT and SIGHUP (asgi_llm/server/workers.py):
        # uvicorn's handlers would skip the drain and re-raise the signal on the way out.
        yield


def config(app: RequestGuard, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=HeadCappedProtocol,
        ws="none",
        lifespan="on",  # a failed startup stops the server (the stack reports why)
        interface="asgi3",
        log_config=None,  # asgi_llm.logs.configure has set up logging
        access_log=False,  # RequestGuard writes the access line
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=settings.keep_alive,  # type: ignore[arg-type]  # a float works
        # uvicorn waits this long for connections after the drain: room for the error events.
        timeout_graceful_shutdown=settings.drain_timeout + 2,  # type: ignore[arg-type]
    )


async def run(
    app: RequestGuard,
    sockets: list[socket.socket],
    settings: Settings,
    shutdown_trigger: Callable[[], Awaitable[None]],
) -> None:
    server = _Server(config(app, settings))

    async def stop_when_triggered() -> None:
        await shutdown_trigger()
        server.should_exit = True  # uvicorn looks at it every 0.1 s

    trigger = asyncio.get_running_loop().create_task(stop_when_triggered())
    try:
        await server.serve(sockets=sockets)
    finally:
        trigger.cancel()
