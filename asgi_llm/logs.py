"""Logging for `asgi-llm serve`: text or JSON lines, and an access log that never writes a
query string, a header or anything from the environment."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
from hypercorn.logging import Logger as HypercornLogger

MAX_FIELD = 512


def _clean(value: str) -> str:
    """One line, printable, bounded: a client cannot forge or flood log lines."""
    text = value if value.isprintable() else "".join(c if c.isprintable() else "?" for c in value)
    return text if len(text) <= MAX_FIELD else text[: MAX_FIELD - 3] + "..."


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _clean(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info and record.exc_info[1] is not None:
            line["error"] = _clean(repr(record.exc_info[1]))
        return orjson.dumps(line).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


def configure(log_format: str = "text", level: str = "info") -> None:
    """Root logging for the server process (never called on import)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx2 logs every request at INFO (with the upstream URL): not for a proxy's log.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    for name in ("hypercorn.error", "hypercorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


ACCESS_NOTE = "asgi_llm.access"  # scope key: what the response said, for the access line


class AccessNote:
    """What went out on `http.response.start`, kept in scope by `RequestGuard`: hypercorn logs
    a stream the client left with no response object, so the line would lose both."""

    __slots__ = ("request_id", "status")

    def __init__(self) -> None:
        self.status: int | None = None
        self.request_id: str | None = None


# nginx's word for "the client closed the connection before any response was sent".
CLIENT_CLOSED = 499


class AccessLogger(HypercornLogger):
    """Hypercorn's logger with our access line: method, path (no query), status, bytes,
    duration, client, request id. Hypercorn's own atoms include every header and the whole
    environment; we never build them."""

    access_log = logging.getLogger("asgi_llm.access")

    async def access(self, request: Any, response: Any, request_time: float) -> None:
        if self.access_logger is None or not self.access_log.isEnabledFor(logging.INFO):
            return
        client = request.get("client")
        note: AccessNote | None = request.get(ACCESS_NOTE)
        if note is not None:
            status, request_id = note.status, note.request_id
        else:  # a server that runs our app without RequestGuard
            headers = response.get("headers", ()) if response else ()
            status = None
            request_id = next((v.decode("latin-1") for k, v in headers if k == b"x-request-id"), None)
        if response is not None:
            status = response["status"]
        # No response object: the connection closed before the response ended (a client that
        # left a stream, or one that left before any answer).
        fields = {
            "method": request.get("method", "GET"),
            "path": _clean(request.get("path", "")),
            "status": status if status is not None else CLIENT_CLOSED,
            "duration_ms": round(request_time * 1000, 2),
            "client": client[0] if client else None,
            "request_id": request_id,
            "client_gone": response is None,
        }
        self.access_log.info(
            "%s %s %s", fields["method"], fields["path"], fields["status"], extra={"fields": fields}
        )
