"""`asgi-llm serve`: the full stack on uvicorn (the default), hypercorn or granian.

    guard.py       RequestGuard, outermost whatever the server: refusals and the access line
    workers.py     a worker's life (stack, signals, drain, reload, gc) and the parent of N
    uvicorn.py     one module per server, the only one that imports it
    hypercorn.py
    granian.py

`serve` binds first, then announces, then runs the workers: a port in use is one line, and
nothing was started.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from asgi_llm.server.guard import MAX_HEADER_BYTES, RequestGuard
from asgi_llm.server.workers import (
    CONFIG_ENV,
    CannotListen,
    CannotServe,
    Settings,
    bind_address,
    bound_address,
    listen,
    load_config,
    run_workers,
    stack_from_env,
)

# Measured with `python -m benchmarks.run` (docs/performance.md): uvicorn on httptools served
# the full stack fastest and passes the whole serving suite; granian drains without the
# error events, and hypercorn is kept for HTTP/2 and for those who run it already.
SERVERS = ("uvicorn", "granian", "hypercorn")  # as the contract writes `--server`
DEFAULT_SERVER = "uvicorn"


def serve(
    host: str,
    port: int,
    workers: int = 1,
    *,
    server: str = DEFAULT_SERVER,
    drain_timeout: float = 10.0,
    access_log: bool = True,
    log_format: str = "text",
    log_level: str = "info",
    keep_alive: float = 20.0,
    announce: Callable[[str], None] | None = None,
) -> int:
    """Bind, then `announce(address)` (the banner), then run the workers; the exit status.
    Raises CannotServe (CannotListen when the address cannot be bound) before anything is
    announced."""
    if server not in SERVERS:
        raise ValueError(f"unknown server {server!r}: one of {', '.join(SERVERS)}")
    if server == "granian" and importlib.util.find_spec("granian") is None:
        raise CannotServe("--server granian needs granian: pip install 'asgi-llm[granian]'")
    settings = Settings(
        server=server,
        drain_timeout=drain_timeout,
        access_log=access_log,
        log_format=log_format,
        log_level=log_level,
        keep_alive=keep_alive,
    )
    sockets = listen(host, port)
    if announce is not None:
        announce(bound_address(sockets, host, port))
    if server == "granian":
        from asgi_llm.server import granian

        return granian.serve(sockets, settings, workers)
    return run_workers(sockets, settings, workers)


__all__ = [
    "CONFIG_ENV",
    "DEFAULT_SERVER",
    "MAX_HEADER_BYTES",
    "SERVERS",
    "CannotListen",
    "CannotServe",
    "RequestGuard",
    "bind_address",
    "load_config",
    "serve",
    "stack_from_env",
]
