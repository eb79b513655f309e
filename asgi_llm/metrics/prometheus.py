"""PrometheusExporter: the metrics as prometheus-client series in a registry of our own.

Never the global default registry: each exporter owns one (or takes the user's). Label
children are bound once per label set and kept, so the hot path is dict lookups and adds.

Several worker processes (`asgi-llm serve --workers N`) need prometheus-client's
multiprocess mode: `PROMETHEUS_MULTIPROC_DIR` set before prometheus_client is first
imported (the `serve` command does it). Values then live in per-process files in that
directory and a scrape of any worker sums them all.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import values as _values
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from asgi_llm.metrics.exporter import BaseExporter, ProxyState
from asgi_llm.metrics.record import RequestRecord

TOTAL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


def multiprocess_mode() -> bool:
    """Whether prometheus_client was imported with PROMETHEUS_MULTIPROC_DIR set."""
    return bool(getattr(_values.ValueClass, "_multiprocess", False))


class PrometheusExporter(BaseExporter):
    def __init__(self, registry: CollectorRegistry | None = None, *, prefix: str = "asgi_llm") -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.multiprocess = multiprocess_mode()
        r, p = self.registry, prefix
        mm: dict[str, Any] = {}

        def live(mode: str) -> dict[str, Any]:
            return {"multiprocess_mode": mode} if self.multiprocess else mm

        self.requests = Counter(
            f"{p}_requests",
            "LLM requests by outcome.",
            ("endpoint", "model", "deployment", "status", "cache"),
            registry=r,
        )
        self.errors = Counter(
            f"{p}_errors",
            "Requests answered with an error, by error type.",
            ("endpoint", "model", "type", "code"),
            registry=r,
        )
        self.prompt_tokens = Counter(
            f"{p}_prompt_tokens", "Prompt tokens (as the upstream said).", ("model", "deployment"), registry=r
        )
        self.completion_tokens = Counter(
            f"{p}_completion_tokens", "Completion tokens.", ("model", "deployment"), registry=r
        )
        self.tokens = Counter(
            f"{p}_tokens",
            "Tokens by kind: input, cache_read, cache_write, cache_write_1h, output, reasoning "
            "(they add up to prompt + completion tokens).",
            ("model", "deployment", "kind"),
            registry=r,
        )
        self.cost = Counter(
            f"{p}_cost_usd",
            "Cost in USD from the deployment's price table.",
            ("model", "deployment"),
            registry=r,
        )
        self.duration = Histogram(
            f"{p}_request_duration_seconds",
            "Whole request, as the proxy saw it (streams until their end).",
            ("model", "deployment"),
            buckets=TOTAL_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            f"{p}_time_to_first_token_seconds",
            "Streams: request start to the first event sent to the client.",
            ("model", "deployment"),
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.upstream = Histogram(
            f"{p}_upstream_duration_seconds",
            "The answering attempt, from its start to its end.",
            ("model", "deployment"),
            buckets=TOTAL_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            f"{p}_proxy_overhead_seconds",
            "Request time not spent upstream: the proxy's own cost.",
            ("endpoint",),
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            f"{p}_requests_in_flight", "LLM requests being served now.", registry=r, **live("livesum")
        )
        self.cache_hits = Counter(
            f"{p}_cache_hits", "Answers served from the cache.", ("model", "kind"), registry=r
        )
        self.cache_semantic = Counter(
            f"{p}_cache_semantic_decisions",
            "Semantic cache lookups by the stage that decided: cosine, judge, threshold or guard.",
            ("model", "stage"),
            registry=r,
        )
        self.rejections = Counter(
            f"{p}_ratelimit_rejections",
            "Requests refused by the proxy's rate limits or budgets.",
            ("model", "reason"),
            registry=r,
        )
        self.failovers = Counter(
            f"{p}_failovers", "Upstream attempts after the first one.", ("model",), registry=r
        )
        self.fallbacks = Counter(
            f"{p}_fallbacks", "Requests served by a fallback model.", ("model", "fallback"), registry=r
        )
        self.stream_failures = Counter(
            f"{p}_stream_failures", "Streams cut after their first byte.", ("model", "code"), registry=r
        )
        self.disconnects = Counter(
            f"{p}_client_disconnects", "Requests whose client left before the end.", ("endpoint",), registry=r
        )
        self.reloads = Counter(f"{p}_config_reloads", "Config reload attempts.", ("result",), registry=r)
        self.degraded = Gauge(
            f"{p}_backend_degraded",
            "1 while a shared backend is down and its fallback serves.",
            ("backend",),
            registry=r,
            **live("livemax"),
        )
        self.cooling = Gauge(
            f"{p}_deployment_cooling",
            "1 while the router skips a deployment after failures.",
            ("deployment",),
            registry=r,
            **live("livemax"),
        )
        self.dropped = Counter(
            f"{p}_telemetry_dropped", "Telemetry that could not be sent or recorded.", ("sink",), registry=r
        )
        self.ledger_written = Counter(
            f"{p}_ledger_written", "Ledger records written to the database.", registry=r
        )
        self.ledger_dropped = Counter(
            f"{p}_ledger_dropped",
            "Ledger records dropped: the queue was full, or the database was down past the spill.",
            registry=r,
        )
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self._in_flight = self.in_flight
        for result in ("ok", "failed"):
            self.reloads.labels(result)  # both series exist from the start (rate() needs them)

    # -- the hot path -----------------------------------------------------------------
    def request_started(self) -> None:
        self._in_flight.inc()

    def record(self, request: RequestRecord) -> None:
        self._in_flight.dec()
        child = self._child
        child(
            self.requests,
            (request.endpoint, request.model, request.deployment, request.status_class, request.cache),
        ).inc()
        model = request.model
        pair = (model, request.deployment)
        child(self.duration, pair).observe(request.total_s)
        if request.ttft_s is not None:
            child(self.ttft, pair).observe(request.ttft_s)
        if request.upstream_s is not None:
            child(self.upstream, pair).observe(request.upstream_s)
        if request.overhead_s is not None:
            child(self.overhead, (request.endpoint,)).observe(request.overhead_s)
        if request.prompt_tokens:
            child(self.prompt_tokens, pair).inc(request.prompt_tokens)
        if request.completion_tokens:
            child(self.completion_tokens, pair).inc(request.completion_tokens)
        for kind, tokens in request.token_kinds:
            child(self.tokens, (*pair, kind)).inc(tokens)
        if request.cost_usd:
            child(self.cost, pair).inc(request.cost_usd)
        # Rarer outcomes: bound through labels() (dict lookups inside prometheus_client).
        if request.error_type is not None:
            self.errors.labels(
                request.endpoint, model, request.error_type, request.error_code or "none"
            ).inc()
            if request.rate_limited:
                self.rejections.labels(model, request.error_code or "none").inc()
        if request.cache == "hit" and request.cache_kind is not None:
            self.cache_hits.labels(model, request.cache_kind).inc()
        if request.cache_stage is not None:
            self.cache_semantic.labels(model, request.cache_stage).inc()
        if request.attempts > 1:
            self.failovers.labels(model).inc(request.attempts - 1)
        if request.fallback_from is not None:
            self.fallbacks.labels(request.fallback_from, model).inc()
        if request.stream_failure is not None:
            self.stream_failures.labels(model, request.stream_failure).inc()
        if request.disconnected:
            self.disconnects.labels(request.endpoint).inc()

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        """The bound child of a label set: made once, then one dict lookup (labels() costs
        a lock and validation on every call). Bounded: every label value is."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- the rest ---------------------------------------------------------------------
    def state(self, state: ProxyState) -> None:
        for backend, down in state.degraded.items():
            self.degraded.labels(backend).set(1 if down else 0)
        for deployment, cooling in state.cooling.items():
            self.cooling.labels(deployment).set(1 if cooling else 0)

    def config_reloaded(self, ok: bool) -> None:
        self.reloads.labels("ok" if ok else "failed").inc()

    def telemetry_dropped(self, sink: str, count: int = 1) -> None:
        self.dropped.labels(sink).inc(count)

    def ledger_counts(self, written: int, dropped: int) -> None:
        if written:
            self.ledger_written.inc(written)
        if dropped:
            self.ledger_dropped.inc(dropped)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition (and its content type) of this process, or of all workers'."""
        encoder, content_type = choose_encoder(accept or "")
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return encoder(registry), content_type
        return encoder(self.registry), content_type


__all__ = ["PrometheusExporter", "multiprocess_mode"]
