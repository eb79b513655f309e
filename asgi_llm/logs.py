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


class AccessLogger(HypercornLogger):
    """Hypercorn's logger with our access line: method, path (no query), status, bytes,
    duration, client, request id. Hypercorn's own atoms include every header and the whole
    environment; we never build them."""

    access_log = logging.getLogger("asgi_llm.access")

    async def access(self, request: Any, response: Any, request_time: float) -> None:
        if self.access_logger is None or not self.access_log.isEnabledFor(logging.INFO):
            return
        client = request.get("client")
        headers = response.get("headers", ()) if response else ()
        request_id = next((v.decode("latin-1") for k, v in headers if k == b"x-request-id"), None)
        fields = {
            "method": request.get("method", "GET"),
            "path": _clean(request.get("path", "")),
            "status": response["status"] if response else None,
            "duration_ms": round(request_time * 1000, 2),
            "client": client[0] if client else None,
            "request_id": request_id,
        }
        self.access_log.info(
            "%s %s %s", fields["method"], fields["path"], fields["status"], extra={"fields": fields}
        )
