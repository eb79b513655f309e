"""One worker process's life under `asgi-llm serve`, whichever server runs it, and the
parent that binds the address and spawns `--workers N` of them.

A worker builds the stack, wraps it in RequestGuard, tunes the collector, and hands both
to its server (asgi_llm/server/{uvicorn,hypercorn}.py) with a shutdown trigger: on SIGTERM
or SIGINT the server stops accepting, the stack's drain starts (streams still running after
`drain_timeout` end with an error event, no `[DONE]`), and requests finish. SIGHUP reloads
the config file.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from asgi_llm.app import LLMApp, build_app
from asgi_llm.config.default import default_config
from asgi_llm.config.loader import Config
from asgi_llm.server.guard import RequestGuard

CONFIG_ENV = "ASGI_LLM_CONFIG"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PARENT_ENV = "ASGI_LLM_SERVE_PARENT"
GC_YOUNG_THRESHOLD = 50_000  # set for the workers of `serve`
BACKLOG = 2048


def load_config(path: str | None = None) -> Config:
    path = path or os.environ.get(CONFIG_ENV)
    return Config.from_file(path) if path else default_config()


def stack_from_env() -> LLMApp:
    """The stack each worker builds (the config path travels in the environment)."""
    return build_app(load_config())


@dataclass(frozen=True, slots=True)
class Settings:
    """What `serve` passes to every worker (picklable: spawned workers get a copy)."""

    server: str
    drain_timeout: float = 10.0
    access_log: bool = True
    log_format: str = "text"
    log_level: str = "info"
    keep_alive: float = 20.0


class Backend(Protocol):
    """One HTTP server, driven from a worker's running loop until shutdown and drain."""

    async def run(
        self,
        app: RequestGuard,
        sockets: list[socket.socket],
        settings: Settings,
        shutdown_trigger: Callable[[], Awaitable[None]],
    ) -> None: ...


def backend(name: str) -> Backend:
    """The server's module, imported only when chosen (each is the one importer of its
    server package, so a server that is not installed costs nothing until asked for)."""
    if name == "uvicorn":
        from asgi_llm.server import uvicorn

        return uvicorn
    if name == "hypercorn":
        from asgi_llm.server import hypercorn

        return hypercorn
    raise ValueError(f"unknown server {name!r}")


def freeze_startup_objects() -> None:
    # What exists now (modules, the config, the stack) lives as long as the process: out of
    # the collector's sight, so a full collection walks only what requests create (measured:
    # 80k start-up objects cost each full collection ~60 ms on this machine, a p99 spike).
    gc.collect()
    gc.freeze()
    # Requests make plenty of short-lived objects and few cycles (refcounting frees the
    # rest): a young collection every 50k allocations instead of every 700 measured +9-17%
    # req/s and a lower p99 for the full stack at 16 connections (docs/performance.md).
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)


async def serve_worker(sockets: list[socket.socket], settings: Settings) -> str | None:
    """Serve until stopped; the reason the stack could not start, or None."""
    from asgi_llm.logs import configure

    access_lines = configure(settings.log_format, settings.log_level)
    server = backend(settings.server)
    stack = stack_from_env()
    app = RequestGuard(stack, access_log=access_lines if settings.access_log else False)
    freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    configs = stack.configs
    # SIGHUP: reload the config file (validated; the old one stays if bad)
    reloads: set[asyncio.Task[Any]] = set()

    def reload() -> None:
        task = loop.create_task(configs.reload_async(origin="signal"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
    if _early_hangups:  # a SIGHUP came while the config was being read: read it again
        reload()
    parent = os.environ.get(PARENT_ENV)
    if parent is not None and parent == str(os.getppid()):
        # An admin reload reaches one worker: it asks the parent, which sends SIGHUP to
        # every worker (this one included), so all of them serve the same config.
        def siblings(result: Any) -> None:
            if result.ok and result.origin == "admin":
                os.kill(int(parent), signal.SIGHUP)

        configs.reload_observers.append(siblings)

    async def shutdown_trigger() -> None:
        await stop.wait()
        stack.drain(settings.drain_timeout)

    try:
        await server.run(app, sockets, settings, shutdown_trigger)
    except (Exception, SystemExit):
        # A failed startup: hypercorn raises, uvicorn exits (status 3). The stack's reason,
        # already logged, is the whole story; the server's traceback adds nothing to it.
        if app.startup_failure is None:
            raise
    return app.startup_failure


_early_hangups: list[int] = []


def _remember_hangup(signum: int, frame: Any) -> None:
    _early_hangups.append(signum)


def run_worker(sockets: list[socket.socket], settings: Settings) -> int:
    """Serve until stopped: 0, or 1 after one line saying why the app could not start."""
    # From here on a SIGHUP is remembered until the loop handles it (serve_worker): one sent
    # while this worker reads its config (another worker's admin reload) must not be lost.
    signal.signal(signal.SIGHUP, _remember_hangup)
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        failure = runner.run(serve_worker(sockets, settings))
    if failure is not None:
        print(f"asgi-llm: cannot start: {failure}", file=sys.stderr, flush=True)
        return 1
    return 0


def _worker_process(sockets: list[socket.socket], settings: Settings) -> None:
    raise SystemExit(run_worker(sockets, settings))  # the exit status is what the parent sees


class CannotServe(Exception):
    """Nothing was started, and the message says why."""


class CannotListen(CannotServe):
    """The address cannot be bound."""


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen(host: str, port: int) -> list[socket.socket]:
    """The listening socket, made before anything is announced or started (every server
    here accepts on sockets it is given; spawned workers get duplicates of it)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(BACKLOG)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc)  # "address already in use"
        raise CannotListen(f"cannot listen on {bind_address(host, port)}: {reason}") from None
    sock.setblocking(False)
    return [sock]


def bound_address(sockets: list[socket.socket], host: str, port: int) -> str:
    """`host:port` as bound (port 0 asks the OS for one: this is the one it gave)."""
    for sock in sockets:
        return bind_address(host, int(sock.getsockname()[1]))
    return bind_address(host, port)


def run_workers(sockets: list[socket.socket], settings: Settings, workers: int) -> int:
    """Run `workers` processes on the bound sockets (this one when 1); the exit status."""
    # SIGHUP (reload) must not kill a process still starting: ignored until each worker's
    # loop handles it (an ignored signal stays ignored in the spawned workers).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if workers <= 1:
        return run_worker(sockets, settings)
    # Prometheus totals across workers: prometheus-client's multiprocess mode, one fresh
    # directory of per-process files for this run (set before any worker imports it).
    metrics_dir = None
    if not os.environ.get(MULTIPROC_ENV):
        metrics_dir = os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="asgi-llm-metrics-")
    os.environ[PARENT_ENV] = str(os.getpid())
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_process, args=(sockets, settings), daemon=False)
        for _ in range(workers)
    ]
    for process in processes:
        process.start()

    def forward(signum: int, frame: Any) -> None:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGHUP if signum == signal.SIGHUP else signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGHUP, forward)
    try:
        for process in processes:
            process.join()
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return max((p.exitcode or 0) for p in processes)
