"""Logging for `asgi-llm serve`: text or JSON lines, and an access log that never writes a
query string, a header or anything from the environment."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

MAX_FIELD = 512
ACCESS_LOGGER = "asgi_llm.access"
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
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self.stamp(record.created)

    def stamp(self, created: float) -> str:
        """logging's own `asctime`, with strftime run once a second instead of once a line."""
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(created))
            self._second = second
        return f"{self._stamp},{int((created - second) * 1000):03d}"  # logging's '%s,%03d'

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            text += " " + _pairs(fields)
        return text


def _pairs(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in fields.items())


class AccessWriter:
    """The `asgi_llm.access` line as `configure`'s formatter writes it, straight to its
    handler's stream: no LogRecord, no handler chain. RequestGuard calls it once per request
    under `asgi-llm serve`; going through logging cost ~46 us of CPU per request on the wire
    (~10% of the full stack's, docs/performance.md). Same level check, same line."""

    def __init__(self, handler: logging.StreamHandler[Any], formatter: logging.Formatter) -> None:
        self._handler = handler
        self._text = formatter if isinstance(formatter, TextFormatter) else None
        self._logger = logging.getLogger(ACCESS_LOGGER)

    def __call__(self, fields: dict[str, Any]) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        now = time.time()
        message = f"{fields['method']} {fields['path']} {fields['status']}"
        if self._text is not None:
            line = f"{self._text.stamp(now)} INFO {ACCESS_LOGGER}: {message} {_pairs(fields)}\n"
        else:
            head = {
                "ts": round(now, 3),
                "level": "info",
                "logger": ACCESS_LOGGER,
                "message": clean_field(message),
            }
            line = orjson.dumps({**head, **fields}).decode() + "\n"
        handler = self._handler
        try:
            with handler.lock:  # type: ignore[union-attr]  # a line never interleaves another
                handler.stream.write(line)
                handler.stream.flush()
        except Exception:  # a closed or broken stream: logging's own error handling, as for any line
            record = self._logger.makeRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, message, (), None)
            handler.handleError(record)


def configure(log_format: str = "text", level: str = "info") -> AccessWriter:
    """Root logging for the server process (never called on import); the access lines'
    writer for RequestGuard."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = JSONFormatter() if log_format == "json" else TextFormatter()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # No formatter here shows a record's thread or process: not looking them up for every
    # record (the access line is one per request) is logging's own documented optimization.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # httpx2 logs every request at INFO (with the upstream URL): not for a proxy's log.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    # The servers' own loggers go through the same handler (their access logs are off:
    # asgi_llm.server.guard writes the access line).
    for name in SERVER_LOGGERS:
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    return AccessWriter(handler, formatter)


# nginx's word for "the client closed the connection before any response was sent".
CLIENT_CLOSED = 499
