"""MetricsMiddleware: the facts of every finished LLM request, to every exporter.

Outermost in the default stack, so it sees every outcome, refusals by auth and limits
included. When it is the layer that runs the request's exchange it records after the
exchange, once the status and any error are final; further in, it records in the `finally`
around the inner app. Telemetry fails open: nothing here can fail or slow a request past
a few microseconds, and an exporter that raises is logged and counted.

Serves `metrics.prometheus.path` (GET) in the Prometheus text format; every other non-LLM
path passes through untouched, so mounted in a user's app it counts only LLM traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager, ReloadResult
from asgi_llm.config.schema import Metrics, StatsD
from asgi_llm.context import LLMContext, get_context
from asgi_llm.exchange import LLMLayer, run_exchange
from asgi_llm.health import HealthRegistry
from asgi_llm.metrics.exporter import Exporter, ProxyState
from asgi_llm.metrics.finished import FinishedListener
from asgi_llm.metrics.record import RecordBuilder
from asgi_llm.request import match_endpoint, route_path
from asgi_llm.responses import send_response
from asgi_llm.routing.health import CooldownTracker
from asgi_llm.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("asgi_llm.metrics")

Observe = Callable[[LLMContext, Send], Send]

STATE_EVERY_S = 1.0  # gauges (degraded backends, cooling deployments) sampled this often
_ERROR_LOG_EVERY_S = 60.0


class MetricsMiddleware(LLMLayer):
    """Records LLM requests for Prometheus (`metrics.prometheus`), StatsD (`metrics.statsd`)
    and any `exporters` given here (these always receive, whatever the config says); hands
    each finished request's context to the "request finished" `listeners` (metrics/finished.py:
    the ledger, the tracer) that want its config snapshot."""

    kind = "metrics"

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: Config | ConfigManager,
        exporters: Iterable[Exporter] = (),
        registry: Any = None,
        health: HealthRegistry | None = None,
        cooldowns: CooldownTracker | None = None,
        listeners: Iterable[FinishedListener] = (),
    ) -> None:
        """`health` and `cooldowns` feed the gauges (backends in fallback, deployments cooling
        down): `build_app` hands in the ones the other layers write; built alone, the layer
        reports what it is given."""
        super().__init__(app, config=config)
        self.health = health if health is not None else HealthRegistry()
        self.cooldowns = cooldowns
        self.custom: tuple[Exporter, ...] = tuple(exporters)
        self.listeners: tuple[FinishedListener, ...] = tuple(listeners)
        self._registry = registry
        self._prometheus: Any = None  # made the first time a snapshot asks for it
        self._statsd: dict[tuple[Any, ...], Any] = {}
        self._builders: dict[int, RecordBuilder] = {}
        self._key = f"metrics.exporters.{id(self)}"
        self.in_flight = 0
        self.failures = 0  # records or exports that raised (fail-open counter)
        self._last_error_log = 0.0
        self._task: asyncio.Task[None] | None = None
        self.configs.reload_observers.append(self._on_reload)

    # -- exporters and listeners per snapshot -----------------------------------------
    def exporters(self, config: Config) -> tuple[Exporter, ...]:
        return self._sinks(config).exporters

    def finished_listeners(self, config: Config) -> tuple[FinishedListener, ...]:
        """The listeners that want this snapshot's requests (asked once per snapshot)."""
        return self._sinks(config).listeners

    def _sinks(self, config: Config) -> _Sinks:
        """Everything a request under this snapshot is handed to: one lookup per request."""
        try:
            return config.derive(self._key, self._build_sinks)
        except Exception:  # fail open, each part on its own (and asked again next time)
            return self._sinks_of_parts(config)

    def _build_sinks(self, config: Config) -> _Sinks:
        return _Sinks.of(self._build_exporters(config), self._wanting(config), self._builder(config.metrics))

    def _sinks_of_parts(self, config: Config) -> _Sinks:
        try:
            exporters = self._build_exporters(config)
        except Exception:  # a sink that cannot be built is no reason to fail
            self._failed("setup", None)
            exporters = self.custom
        try:
            listeners = self._wanting(config)
        except Exception:
            self._failed("setup", None)
            listeners = ()
        return _Sinks.of(exporters, listeners, self._builder(config.metrics))

    def _wanting(self, config: Config) -> tuple[FinishedListener, ...]:
        return tuple(x for x in self.listeners if x.enabled(config))

    def _build_exporters(self, config: Config) -> tuple[Exporter, ...]:
        settings = config.metrics
        built: list[Exporter] = []
        if settings is not None and settings.prometheus is not None:
            built.append(self.prometheus)
        if settings is not None and settings.statsd is not None:
            built.append(self._statsd_for(settings.statsd))
        return (*built, *self.custom)

    @property
    def prometheus(self) -> Any:
        """This layer's PrometheusExporter (its `registry` holds the series)."""
        if self._prometheus is None:
            from asgi_llm.metrics.prometheus import PrometheusExporter

            self._prometheus = PrometheusExporter(self._registry)
        return self._prometheus

    def _statsd_for(self, settings: StatsD) -> Any:
        key = (
            settings.host,
            settings.port,
            settings.prefix,
            tuple(sorted(settings.tags.items())),
            settings.max_packet_bytes,
        )
        exporter = self._statsd.get(key)
        if exporter is None:
            from asgi_llm.metrics.statsd import StatsDExporter

            for old in self._statsd.values():  # a reload moved the agent: close the old socket
                old.sender.close()
            exporter = StatsDExporter(
                settings.host,
                settings.port,
                prefix=settings.prefix,
                tags=settings.tags,
                max_packet_bytes=settings.max_packet_bytes,
            )
            self._statsd = {key: exporter}
        return exporter

    def _builder(self, settings: Metrics | None) -> RecordBuilder:
        limit = settings.max_label_values if settings is not None else 500
        builder = self._builders.get(limit)
        if builder is None:
            builder = self._builders[limit] = RecordBuilder(limit)
        return builder

    # -- the request path -------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and get_context(scope) is None:
            config = self.configs.current
            endpoint = match_endpoint(scope, config.server.path_prefix)
            if endpoint is not None:
                sinks = self._sinks(config)
                if sinks.active:  # we run the exchange: record after it, status and error final
                    self._started(sinks.exporters)
                try:
                    await run_exchange(
                        config,
                        endpoint,
                        scope,
                        receive,
                        send,
                        self._inward_observed if sinks.observers else self._inward,
                        self.request_ids.for_scope(scope),
                    )
                finally:
                    ctx = get_context(scope) if sinks.active else None
                    if ctx is not None:
                        self._finished(sinks, scope, ctx, None)
                return
        await super().__call__(scope, receive, send)

    async def _inward(self, ctx: LLMContext, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    async def _inward_observed(self, ctx: LLMContext, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, self._observed(self._sinks(ctx.config), ctx, send))

    def _observed(self, sinks: _Sinks, ctx: LLMContext, send: Send) -> Send:
        """`send` as the listeners that watch answers go by wrap it (metrics/finished.py)."""
        for listener, observe in sinks.observers:
            try:
                send = observe(ctx, send)
            except Exception:
                self._failed("observe", listener)
        return send

    async def handle(self, ctx: LLMContext, scope: Scope, receive: Receive, send: Send) -> None:
        # Another layer runs the exchange (we are mounted further in): it renders the error
        # only after we return, so catch it here on its way out.
        sinks = self._sinks(ctx.config)
        if not sinks.active:
            await self.app(scope, receive, send)
            return
        self._started(sinks.exporters)
        error: BaseException | None = None
        try:
            await self.app(scope, receive, self._observed(sinks, ctx, send) if sinks.observers else send)
        except Exception as exc:
            error = exc
            raise
        finally:
            self._finished(sinks, scope, ctx, error)

    def _started(self, exporters: tuple[Exporter, ...]) -> None:
        self.in_flight += 1
        for exporter in exporters:
            started = getattr(exporter, "request_started", None)
            if started is not None:
                try:
                    started()
                except Exception:
                    self._failed("request_started", exporter)

    def _finished(self, sinks: _Sinks, scope: Scope, ctx: LLMContext, error: BaseException | None) -> None:
        self.in_flight -= 1
        exporters = sinks.exporters
        try:
            record = sinks.builder.build(ctx, error, time.perf_counter())
        except Exception:
            self._failed("build", None)
            for exporter in exporters:  # keep in-flight gauges true even without a record
                with contextlib.suppress(Exception):
                    dec = getattr(getattr(exporter, "in_flight", None), "dec", None)
                    if dec is not None:
                        dec()
            return
        for exporter in exporters:
            try:
                exporter.record(record)
            except Exception:
                self._failed("record", exporter)
        for listener in sinks.listeners:
            try:
                listener.finished(scope, ctx, record)
            except Exception:
                self._failed("finished", listener)

    def ledger_counts(self, written: int, dropped: int) -> None:
        """Ledger records written and dropped since the last call (the ledger's writer calls
        this): counted when Prometheus is configured."""
        settings = self.configs.current.metrics
        if settings is not None and settings.prometheus is not None:
            self.prometheus.ledger_counts(written, dropped)

    def _failed(self, what: str, exporter: Any) -> None:
        self.failures += 1
        if self._prometheus is not None:
            with contextlib.suppress(Exception):
                self._prometheus.telemetry_dropped(type(exporter).__name__ if exporter else what)
        now = time.monotonic()
        if now - self._last_error_log >= _ERROR_LOG_EVERY_S:  # one line a minute at most
            self._last_error_log = now
            log.exception(
                "metrics: %s failed in %s (the request is not affected)",
                what,
                type(exporter).__name__ if exporter is not None else "the record",
            )

    # -- /metrics -----------------------------------------------------------------------
    async def pass_through(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.configs.current.metrics
        if settings is None or settings.prometheus is None or route_path(scope) != settings.prometheus.path:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            allow = [(b"allow", b"GET, HEAD")]
            await send_response(send, 405, b"Use GET.\n", b"text/plain; charset=utf-8", allow)
            return
        exporter = self.prometheus
        self._sample_state()
        accept = None
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value.decode("latin-1")
        # Rendering reads every worker's files in multiprocess mode: not on the loop.
        body, content_type = await asyncio.to_thread(exporter.render, accept)
        await send_response(
            send,
            200,
            b"" if scope["method"] == "HEAD" else body,
            content_type.encode("latin-1"),
            content_length=len(body),
        )

    # -- gauges and reloads -------------------------------------------------------------
    def state(self) -> ProxyState:
        """In-flight requests, degraded backends and cooling deployments of this process."""
        cooling: dict[str, bool] = {}
        config = self.configs.current
        if self.cooldowns is not None:
            guard = self._builder(config.metrics).deployments
            for deployment_id in config.catalog.deployments:
                cooling[guard(deployment_id)] = self.cooldowns.cooling(deployment_id)
        return ProxyState(self.in_flight, self.health.degraded(), cooling)

    def _sample_state(self) -> None:
        exporters = self.exporters(self.configs.current)
        if not exporters:
            return
        try:
            state = self.state()
        except Exception:
            self._failed("state", None)
            return
        for exporter in exporters:
            hook = getattr(exporter, "state", None)
            if hook is not None:
                try:
                    hook(state)
                except Exception:
                    self._failed("state", exporter)

    def _on_reload(self, result: ReloadResult) -> None:
        for exporter in self.exporters(self.configs.current):
            hook = getattr(exporter, "config_reloaded", None)
            if hook is not None:
                try:
                    hook(result.ok)
                except Exception:
                    self._failed("config_reloaded", exporter)

    # -- lifespan -------------------------------------------------------------------------
    async def startup(self) -> None:
        for exporter in self.exporters(self.configs.current):
            start = getattr(exporter, "start", None)
            if start is not None:
                try:
                    await start()
                except Exception:
                    self._failed("start", exporter)
        self._task = asyncio.get_running_loop().create_task(
            self._sample_forever(), name="asgi-llm metrics state"
        )

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(STATE_EVERY_S)
            self._sample_state()

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        exporters = {id(e): e for e in (*self.custom, *self._statsd.values())}
        for exporter in exporters.values():
            close = getattr(exporter, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    self._failed("aclose", exporter)


@dataclass(frozen=True, slots=True)
class _Sinks:
    """What the requests of one config snapshot are handed to (built once per snapshot)."""

    exporters: tuple[Exporter, ...]
    listeners: tuple[FinishedListener, ...]
    observers: tuple[tuple[FinishedListener, Observe], ...]  # the listeners' `observe`
    builder: RecordBuilder
    active: bool  # anything to record: the exchange is timed and its record built

    @classmethod
    def of(
        cls, exporters: tuple[Exporter, ...], listeners: tuple[FinishedListener, ...], builder: RecordBuilder
    ) -> _Sinks:
        observers = tuple(
            (listener, observe)
            for listener in listeners
            if (observe := getattr(listener, "observe", None)) is not None
        )
        return cls(exporters, listeners, observers, builder, bool(exporters or listeners))


__all__ = ["MetricsMiddleware"]
