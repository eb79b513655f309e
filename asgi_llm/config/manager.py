"""ConfigManager: hands every request one immutable snapshot and swaps it atomically.

Sources: the config file (re-read on `reload()`: the admin API, the file watcher and the
fleet's Redis channel in `asgi_llm.config.watch` all end here), with `${VAR}` expanded from
the environment at each load. A candidate is validated whole before the swap; a rejected one
leaves the snapshot in force, and every outcome is logged, counted and kept in `last_reload`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asgi_llm.config.checks import config_warnings
from asgi_llm.config.loader import Config, parse_text
from asgi_llm.errors import ConfigError

log = logging.getLogger("asgi_llm.config")

MAX_CONFIG_BYTES = 16 * 1024 * 1024

# Settings read once when the app starts: a reload that changes them says so in the log.
# (The bind address and the worker count are command-line settings, not in the file.)
RESTART_FIELDS: tuple[str, ...] = (
    "cache.semantic.enabled",
    "cache.semantic.model",
    "cache.semantic.model_path",
    "cache.semantic.backend",
    # The tracer provider is built once (a reload turns spans off and on, capture_content
    # included, but never starts or re-points the exporter).
    "tracing.otlp_endpoint",
    "tracing.service_name",
    "tracing.sample_ratio",
    "tracing.headers",
    "tracing.timeout_s",
)


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    source: str | None
    error: str | None = None
    at: float = 0.0
    origin: str = "admin"  # admin | file | redis | signal | api: who asked for the reload


class ConfigManager:
    """Holds the snapshot in force. Layers read `current` once per request; a reload builds
    and validates a whole new snapshot first, so a bad file never replaces a good config."""

    def __init__(self, config: Config, *, loader: Callable[[str], Config] | None = None) -> None:
        self._current = config
        self._loader = loader  # None: the file is read here and parsed by Config
        self.last_reload: ReloadResult | None = None
        self.last_error: ReloadResult | None = None  # the latest rejected reload, kept after it
        # Called after each swap with (old, new): layers drop state of removed deployments.
        self.listeners: list[Callable[[Config, Config], None]] = []
        # Called with every reload outcome, ok or not (metrics, the fleet's reload channel).
        self.reload_observers: list[Callable[[ReloadResult], None]] = []
        # Extra whole-snapshot checks run before a swap; raising ConfigError rejects it.
        self.validators: list[Callable[[Config], None]] = []
        self.restart_fields: tuple[str, ...] = RESTART_FIELDS
        self.reloads: dict[str, int] = {"ok": 0, "failed": 0}

    @property
    def current(self) -> Config:
        return self._current

    def replace(self, config: Config) -> None:
        old, self._current = self._current, config  # one store: in-flight requests keep theirs
        for listener in self.listeners:
            try:
                listener(old, config)
            except Exception:  # one layer's bookkeeping must not undo or stop the swap
                log.exception("config listener %r failed", listener)

    @property
    def source(self) -> str | None:
        """The file the snapshot in force came from (None or `<...>` when not from a file)."""
        source = self._current.source
        return None if source is None or source.startswith("<") else source

    def build(self, text: bytes | None = None) -> Config:
        """A validated candidate from the source file, or from `text` (that file's content as
        read by a watcher). No side effects, so it may run in a thread; raises ConfigError."""
        source = self.source
        if source is None:
            raise ConfigError("this config was not loaded from a file")
        if text is None and self._loader is not None:
            config = self._loader(source)
        else:
            try:
                if text is None:
                    with open(source, "rb") as handle:
                        text = handle.read(MAX_CONFIG_BYTES + 1)
                if len(text) > MAX_CONFIG_BYTES:
                    raise ConfigError(f"larger than {MAX_CONFIG_BYTES} bytes", source=source)
                decoded = text.decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read: {exc.__class__.__name__}: {exc}", source=source) from None
            if not decoded.strip():
                # A truncate-then-write caught in between: never a config with nothing in it.
                raise ConfigError("the file is empty (a write in progress?)", source=source)
            config = Config.from_dict(parse_text(decoded, Path(source).suffix, source), source=source)
        config.catalog  # noqa: B018 - built now, so a snapshot that cannot serve is refused
        for check in self.validators:
            check(config)
        return config

    def reload(self, *, text: bytes | None = None, origin: str = "admin") -> ReloadResult:
        """Re-read the file the current snapshot came from; keep the old one on any error."""
        try:
            config = self.build(text)
        except ConfigError as exc:
            return self._rejected(exc, origin)
        return self._accepted(config, origin)

    async def reload_async(self, *, text: bytes | None = None, origin: str = "file") -> ReloadResult:
        """`reload`, with reading and validation in a thread so the event loop keeps serving."""
        try:
            config = await asyncio.to_thread(self.build, text)
        except ConfigError as exc:
            return self._rejected(exc, origin)
        return self._accepted(config, origin)

    def _accepted(self, config: Config, origin: str) -> ReloadResult:
        old = self._current
        self.replace(config)
        log.info("config reloaded from %s (%s)%s", config.source, origin, _changes(old, config))
        for name in self.restart_fields:
            if _get(old, name) != _get(config, name):
                log.warning("config: %s changed; it takes effect after a restart", name)
        for warning in config_warnings(config):
            log.warning("config %s: %s", config.source, warning)
        return self._finish(ReloadResult(True, config.source, None, time.time(), origin))

    def _rejected(self, exc: ConfigError, origin: str) -> ReloadResult:
        log.error("config reload (%s) rejected, keeping the config in force: %s", origin, exc)
        result = ReloadResult(False, self._current.source, str(exc), time.time(), origin)
        self.last_error = result
        return self._finish(result)

    def _finish(self, result: ReloadResult) -> ReloadResult:
        self.last_reload = result
        self.reloads["ok" if result.ok else "failed"] += 1
        for observe in self.reload_observers:
            try:
                observe(result)
            except Exception:  # telemetry and notices never fail a reload
                log.exception("config reload observer %r failed", observe)
        return result


def _get(config: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        config = getattr(config, part, None)
        if config is None:
            return None
    return config


def _changes(old: Config, new: Config) -> str:
    before, after = {m.name for m in old.models}, {m.name for m in new.models}
    parts = [f"+{name}" for name in sorted(after - before)]
    parts += [f"-{name}" for name in sorted(before - after)]
    return ": models " + " ".join(parts) if parts else ""


def as_manager(config: Config | ConfigManager) -> ConfigManager:
    """Middlewares accept a snapshot or a manager; both end up as a manager."""
    if isinstance(config, ConfigManager):
        return config
    if isinstance(config, Config):
        return ConfigManager(config)
    raise TypeError(f"config must be a Config or ConfigManager, not {type(config).__name__}")
