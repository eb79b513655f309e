"""ConfigManager: hands every request one immutable snapshot and swaps it atomically."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from asgi_llm.config.loader import Config
from asgi_llm.errors import ConfigError

log = logging.getLogger("asgi_llm.config")


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    source: str | None
    error: str | None = None
    at: float = 0.0


class ConfigManager:
    """Holds the snapshot in force. Layers read `current` once per request; a reload builds
    and validates a whole new snapshot first, so a bad file never replaces a good config."""

    def __init__(self, config: Config, *, loader: Callable[[str], Config] | None = None) -> None:
        self._current = config
        self._loader = loader or Config.from_file
        self.last_reload: ReloadResult | None = None
        self.listeners: list[Callable[[Config, Config], None]] = []

    @property
    def current(self) -> Config:
        return self._current

    def replace(self, config: Config) -> None:
        old, self._current = self._current, config  # one store: in-flight requests keep theirs
        for listener in self.listeners:
            listener(old, config)

    def reload(self) -> ReloadResult:
        """Re-read the file the current snapshot came from; keep the old one on any error."""
        source = self._current.source
        if source is None or source.startswith("<"):
            result = ReloadResult(False, source, "this config was not loaded from a file", time.time())
        else:
            try:
                config = self._loader(source)
            except ConfigError as exc:
                log.error("config reload rejected, keeping the config in force: %s", exc)
                result = ReloadResult(False, source, str(exc), time.time())
            else:
                self.replace(config)
                log.info("config reloaded from %s", source)
                result = ReloadResult(True, source, None, time.time())
        self.last_reload = result
        return result


def as_manager(config: Config | ConfigManager) -> ConfigManager:
    """Middlewares accept a snapshot or a manager; both end up as a manager."""
    if isinstance(config, ConfigManager):
        return config
    if isinstance(config, Config):
        return ConfigManager(config)
    raise TypeError(f"config must be a Config or ConfigManager, not {type(config).__name__}")
