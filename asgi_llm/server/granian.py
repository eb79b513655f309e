"""granian under `asgi-llm serve --server granian` (the one module that imports it): HTTP/1.1
and HTTP/2 (cleartext prior knowledge too) parsed by hyper, in Rust.

granian runs its own processes: a supervisor and `--workers` workers that each import
`app_from_env` (the settings travel in the environment, like the config path) and bind the
port themselves. What it does not offer: a hook between SIGTERM and the closing of
connections, so streams still running at shutdown are cut rather than ended with the
`server_shutdown` error event (docs/usage.md); SIGHUP respawns the workers (which read the
config again) instead of reloading in place.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import asdict

from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings
from granian.server import Server

from asgi_llm.server.guard import MAX_HEADER_BYTES, RequestGuard
from asgi_llm.server.workers import Settings, freeze_startup_objects, stack_from_env
from asgi_llm.types import Message, Send

SETTINGS_ENV = "ASGI_LLM_SERVE_SETTINGS"


class _WorkerGuard(RequestGuard):
    """granian exits a worker whose startup failed with a traceback of its own: the line
    that says why comes first."""

    def _lifespan_send(self, send: Send) -> Send:
        noted = super()._lifespan_send(send)

        async def reported(message: Message) -> None:
            await noted(message)
            if message["type"] == "lifespan.startup.failed":
                print(f"asgi-llm: cannot start: {self.startup_failure}", file=sys.stderr, flush=True)

        return reported


def app_from_env() -> RequestGuard:
    """granian's factory, called in each worker process."""
    from asgi_llm.logs import configure

    settings = Settings(**json.loads(os.environ[SETTINGS_ENV]))
    access_lines = configure(settings.log_format, settings.log_level)
    app = _WorkerGuard(stack_from_env(), access_log=access_lines if settings.access_log else False)
    freeze_startup_objects()
    return app


def serve(sockets: list[socket.socket], settings: Settings, workers: int) -> int:
    """granian binds in every worker: the socket `serve` made only proved the address free
    (and named the port for `--port 0`); it is closed and the same address handed on."""
    host, port = sockets[0].getsockname()[:2]
    for sock in sockets:
        sock.close()
    os.environ[SETTINGS_ENV] = json.dumps(asdict(settings))
    server = Server(
        "asgi_llm.server.granian:app_from_env",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=workers,
        loop=Loops.uvloop,
        http=HTTPModes.auto,
        http1_settings=HTTP1Settings(
            keep_alive=True,
            # hyper refuses (431) a head larger than its buffer, as h11's cap and uvicorn's;
            # RequestGuard the complete ones over 16 KiB
            max_buffer_size=2 * MAX_HEADER_BYTES,
        ),
        websockets=False,
        log_access=False,  # RequestGuard writes the access line
        log_level=settings.log_level,  # type: ignore[arg-type]
        workers_kill_timeout=int(settings.drain_timeout) + 2,
    )
    server.serve()
    return 0
