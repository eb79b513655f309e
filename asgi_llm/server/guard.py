"""RequestGuard: the outermost layer of `asgi-llm serve` (and of `asgi_llm.asgi:app`), the
same whichever HTTP server runs it. It refuses what a server lets through but a proxy should
not, gives every response an `x-request-id`, and writes the access line itself: no server's
own access log is used, because theirs write the query string (uvicorn, granian) or every
header (hypercorn's atoms).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from asgi_llm.errors import InvalidRequest
from asgi_llm.exchange import RequestIds
from asgi_llm.logs import ACCESS_LOGGER, CLIENT_CLOSED, clean_field
from asgi_llm.responses import send_error
from asgi_llm.types import ASGIApp, Message, Receive, Scope, Send

MAX_HEADER_BYTES = 16 * 1024

access_log = logging.getLogger(ACCESS_LOGGER)
AccessLog = Callable[[dict[str, Any]], None]


class RequestGuard:
    """What the HTTP server lets through but a proxy should not (outermost, standalone only):

    - headers larger than `max_bytes` (431): h11 caps only *incomplete* header blocks, and
      httptools none at all (asgi_llm/server/uvicorn.py caps those at the parser);
    - `Content-Length` together with `Transfer-Encoding` (400, connection closed): the parser
      follows the chunked framing, a proxy in front may follow the length, and the difference
      is how requests are smuggled;
    - an absolute-form target (`POST http://host/v1/...`, RFC 9112 3.2.2): hypercorn puts the
      whole URL in `path`; it is routed on its path alone, and its authority is never used.

    With `access_log`, one line per request goes to the `asgi_llm.access` logger once the
    app returns: method, path (never the query), status, duration, client, request id and
    `client_gone` (the response did not end: 499 when nothing was sent, as nginx says). A
    callable gets those fields instead (`asgi-llm serve` gives `asgi_llm.logs.AccessWriter`).
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int = MAX_HEADER_BYTES, *, access_log: bool | AccessLog = True
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.access_log: AccessLog | None = (
            access_log if callable(access_log) else (_log_record if access_log else None)
        )
        self.request_ids = RequestIds()
        # The reason the stack gave in `lifespan.startup.failed`: every server reports it
        # differently (an exception, an exit status, a log line); the runner reads it here.
        self.startup_failure: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                send = self._lifespan_send(send)
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        exchange = _Exchange(send, self.request_ids)
        try:
            headers = scope["headers"]
            if sum(len(k) + len(v) for k, v in headers) > self.max_bytes:
                await _refuse(exchange.send, 431, "Request headers are too large.", "headers_too_large")
                return
            names = {k for k, _ in headers}
            if b"transfer-encoding" in names and b"content-length" in names:
                await _refuse(
                    exchange.send,
                    400,
                    "Content-Length and Transfer-Encoding together are refused.",
                    "ambiguous_framing",
                )
                return
            if not scope["path"].startswith("/"):
                _origin_form(scope)
            await self.app(scope, receive, exchange.send)
        except Exception:
            exchange.failed = True  # the server answers 500 when nothing was sent yet
            raise
        finally:
            if self.access_log is not None:
                self.access_log(exchange.fields(scope, time.perf_counter() - started))

    def _lifespan_send(self, send: Send) -> Send:
        async def noted(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                self.startup_failure = str(message.get("message") or "lifespan startup failed")
            await send(message)

        return noted


class _Exchange:
    """One request's response as the access line sees it (per-request state, off `self`)."""

    __slots__ = ("_send", "complete", "failed", "request_id", "request_ids", "status")

    def __init__(self, send: Send, request_ids: RequestIds) -> None:
        self._send = send
        self.request_ids = request_ids
        self.status: int | None = None
        self.request_id: str | None = None
        self.complete = False
        self.failed = False

    async def send(self, message: Message) -> None:
        """`send`, noting the status and request id; a response without `x-request-id`
        (health, metrics, 404) gets one, so every access line can be found."""
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            headers = message.get("headers") or []
            given = None
            for name, value in headers:
                if name == b"x-request-id":
                    given = value
                    break
            if given is None:
                given = self.request_ids.new().encode()
                message["headers"] = [*headers, (b"x-request-id", given)]
            self.request_id = given.decode("latin-1")
            await self._send(message)
        elif kind == "http.response.body" and not message.get("more_body", False):
            await self._send(message)
            self.complete = True  # only once the server took the last bytes without raising
        else:
            await self._send(message)

    def fields(self, scope: Scope, seconds: float) -> dict[str, Any]:
        """The access line's fields."""
        client = scope.get("client")
        status = self.status
        if status is None:
            status = 500 if self.failed else CLIENT_CLOSED
        return {
            "method": scope.get("method", "GET"),
            "path": clean_field(scope.get("path", "")),
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "client": client[0] if client else None,
            "request_id": self.request_id,
            "client_gone": not (self.complete or self.failed),
        }


def _log_record(fields: dict[str, Any]) -> None:
    """The access line as a record of the `asgi_llm.access` logger, for any logging setup."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    # The record is made here, not by `info()`, which would walk the stack to find the
    # caller's file and line for every request: no access line shows them.
    record = access_log.makeRecord(
        access_log.name,
        logging.INFO,
        __file__,
        0,
        "%s %s %s",
        (fields["method"], fields["path"], fields["status"]),
        None,
        extra={"fields": fields},
    )
    access_log.handle(record)


def _origin_form(scope: Any) -> None:
    """Rewrite an absolute-form target to its path, in place (the access log shows it too)."""
    raw = scope.get("raw_path") or scope["path"].encode("latin-1")
    try:
        parts = urlsplit(raw)
    except ValueError:  # an unparsable target stays as it is: no route matches it (404)
        return
    if parts.scheme.lower() in (b"http", b"https") and parts.netloc:
        path = parts.path or b"/"
        scope["raw_path"] = path
        scope["path"] = unquote(path.decode("latin-1"))


async def _refuse(send: Send, status: int, message: str, code: str) -> None:
    close = [(b"connection", b"close")]  # nothing pipelined after it is read
    await send_error(send, InvalidRequest(message, code=code, status=status, headers=close))


__all__ = ["MAX_HEADER_BYTES", "RequestGuard"]
