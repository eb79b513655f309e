"""The audit log: one JSON line per auth decision and admin action, never a secret."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import orjson

from asgi_llm.config.loader import Config

log = logging.getLogger("asgi_llm.audit")


class AuditUnavailable(Exception):
    pass


class AuditLog:
    """Appends to a file (one `write` per line, so lines from several workers don't mix) or
    hands the line to a logger. Fields are chosen by the callers: ids, never credentials."""

    def __init__(self, path: str | None = None, logger: str | None = None) -> None:
        self.path = path
        self._logger = logging.getLogger(logger) if logger else None
        self._fd: int | None = None
        self._lock = threading.Lock()
        self.failures = 0

    def record(self, event: dict[str, Any], *, required: bool = False) -> None:
        """Write one line. With `required`, a failed write raises (admin actions are refused)."""
        line = orjson.dumps({"ts": round(time.time(), 3), **event}) + b"\n"
        try:
            if self._logger is not None:
                self._logger.info(line[:-1].decode())
            if self.path is not None:
                with self._lock:
                    if self._fd is None:
                        # A raw O_APPEND descriptor: one write(2) per line, atomic across workers.
                        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                    os.write(self._fd, line)
        except OSError as exc:
            self.failures += 1
            log.warning("audit log write failed: %s", exc.__class__.__name__)
            if required:
                raise AuditUnavailable(str(exc)) from None

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def open_audit(path: str | None, logger: str | None) -> AuditLog:
    if path is not None:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
    return AuditLog(path, logger)


class AuditLogs:
    """The audit log of each config snapshot (by path and logger), opened on first use and
    shared by AuthMiddleware and AdminMiddleware, so both write through one descriptor."""

    def __init__(self) -> None:
        self._logs: dict[tuple[str | None, str | None], AuditLog] = {}

    def for_config(self, config: Config) -> AuditLog | None:
        settings = config.auth.audit_log if config.auth else None
        if settings is None:
            return None
        key = (settings.path, settings.logger)
        audit = self._logs.get(key)
        if audit is None:
            audit = self._logs[key] = open_audit(settings.path, settings.logger)
        return audit

    def close(self) -> None:
        logs, self._logs = list(self._logs.values()), {}
        for audit in logs:
            audit.close()
