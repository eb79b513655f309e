"""Logging for `asgi-llm serve`: text or JSON lines, and an access log that never writes a
query string, a header or anything from the environment."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

MAX_FIELD = 512
SERVER_LOGGERS = ("hypercorn.error", "uvicorn", "uvicorn.error")


def clean_field(value: str) -> str:
    """One line, printable, bounded: a client cannot forge or flood log lines."""
    text = value if value.isprintable() else "".join(c if c.isprintable() else "?" for c in value)
    return text if len(text) <= MAX_FIELD else text[: MAX_FIELD - 3] + "..."


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": clean_field(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info and record.exc_info[1] is not None:
            line["error"] = clean_field(repr(record.exc_info[1]))
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
    # The servers' own loggers go through the same handler (their access logs are off:
    # asgi_llm.server.guard writes the access line).
    for name in SERVER_LOGGERS:
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


# nginx's word for "the client closed the connection before any response was sent".
CLIENT_CLOSED = 499
