"""The store a URL names: `memory://` or a Redis URL (any topology: docs/fleet.md)."""

from __future__ import annotations

from urllib.parse import urlsplit

from asgi_llm.config.schema import Responses
from asgi_llm.config.urls import REDIS_SCHEMES
from asgi_llm.response_store.base import ResponseStore
from asgi_llm.response_store.memory import MemoryResponseStore
from asgi_llm.response_store.redis import RedisResponseStore

_DEFAULTS = Responses()  # the config section owns the defaults


def open_store(
    url: str,
    *,
    prefix: str = _DEFAULTS.key_prefix,
    max_entries: int = _DEFAULTS.max_entries,
    max_bytes: int = _DEFAULTS.max_bytes,
    timeout_s: float = _DEFAULTS.timeout_s,
) -> ResponseStore:
    """A store for `url`; `max_*` bound memory://, `prefix` and `timeout_s` apply to Redis.
    Nothing is connected yet: a Redis store connects on its first command."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryResponseStore(max_entries=max_entries, max_bytes=max_bytes)
    if scheme in REDIS_SCHEMES:  # needs the `redis` extra: a clear error here if missing
        return RedisResponseStore(url, prefix=prefix, timeout_s=timeout_s)
    raise ValueError(f"unknown response store scheme {scheme!r} (use memory:// or redis://)")


__all__ = ["open_store"]
