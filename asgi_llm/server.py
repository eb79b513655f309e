"""Run the full stack on hypercorn: `asgi-llm serve`.

One worker runs in this process; more are spawned processes sharing the listening sockets.
On SIGTERM or SIGINT a worker stops accepting, lets requests finish for up to
`drain_timeout` seconds, then ends the streams still running with an error event (no
`[DONE]`), so clients learn the stream was cut rather than hang.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from asgi_llm.app import LLMApp, build_app
from asgi_llm.config.default import default_config
from asgi_llm.config.loader import Config
from asgi_llm.errors import InvalidRequest
from asgi_llm.exchange import RequestIds
from asgi_llm.logs import ACCESS_NOTE, AccessNote
from asgi_llm.responses import send_error
from asgi_llm.types import ASGIApp

CONFIG_ENV = "ASGI_LLM_CONFIG"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PARENT_ENV = "ASGI_LLM_SERVE_PARENT"
GC_YOUNG_THRESHOLD = 50_000  # set for the workers of `serve --workers N`


def load_config(path: str | None = None) -> Config:
    path = path or os.environ.get(CONFIG_ENV)
    return Config.from_file(path) if path else default_config()


MAX_HEADER_BYTES = 16 * 1024


def stack_from_env() -> LLMApp:
    """The stack each worker builds (the config path travels in the environment)."""
    return build_app(load_config())


class RequestGuard:
    """What the HTTP server lets through but a proxy should not (outermost, standalone only):

    - headers larger than `max_bytes` (431): h11 caps only *incomplete* header blocks;
    - `Content-Length` together with `Transfer-Encoding` (400, connection closed): h11 follows
      the chunked framing, a proxy in front may follow the length, and the difference is how
      requests are smuggled;
    - an absolute-form target (`POST http://host/v1/...`, RFC 9112 3.2.2): hypercorn puts the
      whole URL in `path`; it is routed on its path alone, and its authority is never used.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.request_ids = RequestIds()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            send = self._noted(scope, send)
            headers = scope["headers"]
            if sum(len(k) + len(v) for k, v in headers) > self.max_bytes:
                await _refuse(send, 431, "Request headers are too large.", "headers_too_large")
                return
            names = {k for k, _ in headers}
            if b"transfer-encoding" in names and b"content-length" in names:
                await _refuse(
                    send,
                    400,
                    "Content-Length and Transfer-Encoding together are refused.",
                    "ambiguous_framing",
                )
                return
            if not scope["path"].startswith("/"):
                _origin_form(scope)
        await self.app(scope, receive, send)

    def _noted(self, scope: Any, send: Any) -> Any:
        """`send`, noting the status and request id for the access line; a response that
        has no `x-request-id` (health, metrics, 404) gets one, so every line can be found."""
        note = scope[ACCESS_NOTE] = AccessNote()

        async def noted(message: Any) -> None:
            if message["type"] == "http.response.start":
                note.status = message["status"]
                headers = message.get("headers") or []
                given = next((v for k, v in headers if k == b"x-request-id"), None)
                if given is None:
                    given = self.request_ids.new().encode()
                    message["headers"] = [*headers, (b"x-request-id", given)]
                note.request_id = given.decode("latin-1")
            await send(message)

        return noted


def _origin_form(scope: Any) -> None:
    """Rewrite an absolute-form target to its path, in place (the access log shows it too)."""
    raw = scope.get("raw_path") or scope["path"].encode("latin-1")
    try:
        parts = urlsplit(raw)
    except ValueError:  # an unparsable target stays as it is: no route matches it (404)
        return
    if parts.scheme.lower() in (b"http", b"https") and parts.netloc:
        path = parts.path or b"/"
        scope["raw_path"] = path
        scope["path"] = unquote(path.decode("latin-1"))


async def _refuse(send: Any, status: int, message: str, code: str) -> None:
    close = [(b"connection", b"close")]  # nothing pipelined after it is read
    await send_error(send, InvalidRequest(message, code=code, status=status, headers=close))


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def hypercorn_config(
    host: str, port: int, *, drain_timeout: float, access_log: bool, keep_alive: float = 20.0
) -> Any:
    from hypercorn.config import Config as HypercornConfig

    from asgi_llm.logs import AccessLogger

    hc = HypercornConfig()
    hc.bind = [bind_address(host, port)]
    hc.logger_class = AccessLogger
    # Logger objects, not paths: hypercorn then adds no handlers of its own, and every line
    # goes through the formatter `asgi_llm.logs.configure` installs.
    hc.accesslog = logging.getLogger("hypercorn.access") if access_log else None
    hc.errorlog = logging.getLogger("hypercorn.error")
    # Hypercorn holds a connection the client closed while idle until this runs out (its
    # task and fd linger): long values pile up sockets under connection churn.
    hc.keep_alive_timeout = keep_alive
    # Hypercorn waits this long for connections after the drain: room for the error events.
    hc.graceful_timeout = drain_timeout + 2
    hc.h11_max_incomplete_size = 2 * MAX_HEADER_BYTES  # slow or huge header blocks
    return hc


async def serve_worker(hc: Any, sockets: Any, drain_timeout: float, log_format: str, log_level: str) -> None:
    from hypercorn.asyncio.run import worker_serve
    from hypercorn.utils import wrap_app

    from asgi_llm.logs import configure

    configure(log_format, log_level)
    stack = stack_from_env()
    app = RequestGuard(stack)
    # What exists now (modules, the config, the stack) lives as long as the process: out of
    # the collector's sight, so a full collection walks only what requests create (measured:
    # 80k start-up objects cost each full collection ~60 ms on this machine, a p99 spike).
    gc.collect()
    gc.freeze()
    # Requests make plenty of short-lived objects and few cycles (refcounting frees the
    # rest): a young collection every 50k allocations instead of every 700 measured +9-17%
    # req/s and a lower p99 for the full stack at 16 connections (docs/performance.md).
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 100)
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
        stack.drain(drain_timeout)

    wrapped = wrap_app(app, hc.wsgi_max_body_size, None)  # type: ignore[arg-type]
    await worker_serve(wrapped, hc, sockets=sockets, shutdown_trigger=shutdown_trigger)


_early_hangups: list[int] = []


def _remember_hangup(signum: int, frame: Any) -> None:
    _early_hangups.append(signum)


def run_worker(hc: Any, sockets: Any, drain_timeout: float, log_format: str, log_level: str) -> int:
    """Serve until stopped: 0, or 1 after one line saying why the app could not start."""
    from hypercorn.utils import LifespanFailureError, LifespanTimeoutError

    # From here on a SIGHUP is remembered until the loop handles it (serve_worker): one sent
    # while this worker reads its config (another worker's admin reload) must not be lost.
    signal.signal(signal.SIGHUP, _remember_hangup)
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        factory = None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve_worker(hc, sockets, drain_timeout, log_format, log_level))
    except (LifespanFailureError, LifespanTimeoutError) as exc:
        # The stack answered lifespan.startup.failed (asgi_llm/lifespan.py): the reason,
        # already logged, is the whole story; hypercorn's traceback adds nothing to it.
        print(f"asgi-llm: {_lifespan_problem(exc)}", file=sys.stderr, flush=True)
        return 1
    return 0


def _worker_process(*args: Any) -> None:
    raise SystemExit(run_worker(*args))  # the exit status is what the parent sees


def _lifespan_problem(exc: Exception) -> str:
    """The app's own message out of hypercorn's `Lifespan failure in startup. '<message>'`."""
    found = re.fullmatch(r"Lifespan failure in (\w+)\. '(.*)'", str(exc), re.DOTALL)
    if found is None:  # a timeout: hypercorn's sentence says which stage
        return str(exc) or type(exc).__name__
    stage, reason = found.groups()
    return f"cannot start: {reason}" if stage == "startup" else f"{stage} failed: {reason}"


class CannotListen(Exception):
    """The address cannot be bound: nothing was started, and the message says why."""


def bind(hc: Any, host: str, port: int) -> Any:
    """The listening sockets, made before anything is announced or started."""
    try:
        return hc.create_sockets()
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc)  # "address already in use"
        raise CannotListen(f"cannot listen on {bind_address(host, port)}: {reason}") from None


def bound_address(sockets: Any, host: str, port: int) -> str:
    """`host:port` as bound (port 0 asks the OS for one: this is the one it gave)."""
    for sock in getattr(sockets, "insecure_sockets", ()):
        return bind_address(host, int(sock.getsockname()[1]))
    return bind_address(host, port)


def serve(
    host: str,
    port: int,
    workers: int = 1,
    *,
    drain_timeout: float = 10.0,
    access_log: bool = True,
    log_format: str = "text",
    log_level: str = "info",
    keep_alive: float = 20.0,
    announce: Callable[[str], None] | None = None,
) -> int:
    """Bind, then `announce(address)` (the banner), then run the workers; the exit status.
    Raises CannotListen, before anything is announced, when the address cannot be bound."""
    hc = hypercorn_config(
        host, port, drain_timeout=drain_timeout, access_log=access_log, keep_alive=keep_alive
    )
    sockets = bind(hc, host, port)
    if announce is not None:
        announce(bound_address(sockets, host, port))
    args = (hc, sockets, drain_timeout, log_format, log_level)
    # SIGHUP (reload) must not kill a process still starting: ignored until each worker's
    # loop handles it (an ignored signal stays ignored in the spawned workers).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if workers <= 1:
        return run_worker(*args)
    # Prometheus totals across workers: prometheus-client's multiprocess mode, one fresh
    # directory of per-process files for this run (set before any worker imports it).
    metrics_dir = None
    if not os.environ.get(MULTIPROC_ENV):
        metrics_dir = os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="asgi-llm-metrics-")
    os.environ[PARENT_ENV] = str(os.getpid())
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker_process, args=args, daemon=False) for _ in range(workers)]
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
