"""ConfigManager: hands every request one immutable snapshot and swaps it atomically."""

from __future__ import annotations

from asgi_llm.config.loader import Config


class ConfigManager:
    """Holds the snapshot in force. Layers read `current` once per request."""

    def __init__(self, config: Config) -> None:
        self._current = config

    @property
    def current(self) -> Config:
        return self._current

    def replace(self, config: Config) -> None:
        # A single attribute store: requests that already took the old snapshot keep it.
        self._current = config


def as_manager(config: Config | ConfigManager) -> ConfigManager:
    """Middlewares accept a snapshot or a manager; both end up as a manager."""
    if isinstance(config, ConfigManager):
        return config
    if isinstance(config, Config):
        return ConfigManager(config)
    raise TypeError(f"config must be a Config or ConfigManager, not {type(config).__name__}")
