"""Run the full stack on hypercorn: `asgi-llm serve`."""

from __future__ import annotations

import os

from asgi_llm.app import build_app
from asgi_llm.config.default import default_config
from asgi_llm.config.loader import Config
from asgi_llm.types import ASGIApp

CONFIG_ENV = "ASGI_LLM_CONFIG"


def load_config(path: str | None = None) -> Config:
    path = path or os.environ.get(CONFIG_ENV)
    return Config.from_file(path) if path else default_config()


def app_from_env() -> ASGIApp:
    """The app each hypercorn worker builds (the config path travels in the environment)."""
    return build_app(load_config())


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve(host: str, port: int, workers: int = 1, *, graceful_timeout: float = 10.0) -> int:
    from hypercorn.config import Config as HypercornConfig
    from hypercorn.run import run

    hc = HypercornConfig()
    hc.bind = [bind_address(host, port)]
    hc.application_path = "asgi_llm.server:app_from_env()"
    # One worker runs in this process; more are spawned by hypercorn, each loading the app.
    hc.workers = 0 if workers <= 1 else workers
    try:
        import uvloop  # noqa: F401

        hc.worker_class = "uvloop"
    except ImportError:
        hc.worker_class = "asyncio"
    hc.accesslog = None
    hc.errorlog = "-"
    hc.keep_alive_timeout = 75
    hc.graceful_timeout = graceful_timeout
    return run(hc)
