"""How the process runs: `reload:`, `server:` and `admin:` (the dashboard)."""

from __future__ import annotations

from pydantic import Field, field_validator

from asgi_llm.config.schema.base import Section
from asgi_llm.config.urls import check_redis_url


class Reload(Section):
    """Live config: the file watcher and the fleet's Redis reload channel (docs/configuration.md)."""

    watch: bool = True  # poll the config file (and its symlink target) and reload on change
    poll_interval_s: float = Field(0.5, ge=0.05, le=60)
    redis_url: str | None = None
    channel: str = Field("asgi_llm:config", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        return None if value is None else check_redis_url(value)


class Server(Section):
    """asgi-llm's own extension: request-path limits of the exchange."""

    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    body_timeout_s: float = Field(30.0, gt=0, le=3600)  # a slow (slowloris) body gets 408
    max_response_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    # Where the LLM and admin routes live: "/llm" serves /llm/v1/chat/completions,
    # /llm/admin/config, ...; every other path passes through to the app inside.
    path_prefix: str = Field("", pattern=r"^(/[A-Za-z0-9_.\-]+)*$", max_length=128)


class Admin(Section):
    """The admin dashboard (docs/dashboard.md): off unless `ui: true`."""

    ui: bool = False
    ui_path: str = Field("/admin/ui", pattern=r"^(/[A-Za-z0-9_.\-]+)+$", max_length=128)
    # Signs the dashboard's session cookies: every replica (and worker) of a fleet needs the
    # same one ("${ASGI_LLM_UI_SECRET}"); without it each process makes its own at start.
    ui_secret: str | None = Field(None, min_length=32, max_length=512)
    ui_session_ttl_s: float = Field(3600.0, ge=60, le=7 * 86400)

    @field_validator("ui_path")
    @classmethod
    def _check_ui_path(cls, value: str) -> str:
        from asgi_llm.request import ENDPOINTS

        if any(path == value or path.startswith(value + "/") for path in ENDPOINTS) or value in (
            "/healthz",
            "/readyz",
        ):
            raise ValueError(f"{value!r} would hide routes of the proxy")
        return value
