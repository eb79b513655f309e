"""RequestTracer: the process's OpenTelemetry tracer provider, built once (Services) when the
config has `tracing:`, and the two kinds of span it makes.

    request span (SERVER)  `chat gpt-4o-mini`, child of the client's `traceparent`
      attempt span (CLIENT) one per upstream attempt; its id is the `traceparent` the
                            upstream receives

Spans go to a BatchSpanProcessor: ending one queues it (bounded; a full queue drops), and a
thread of the SDK exports batches over OTLP/HTTP, off the request path. The provider starts
at lifespan startup (or on first use without lifespan) and is flushed and shut down by the
lifespan owner. This module imports OpenTelemetry: only asgi_llm.app imports it, and only
when tracing is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from asgi_llm.tracing.attributes import (
    attempt_attributes,
    attempt_result,
    attempt_span_name,
    request_attributes,
    span_name,
)
from asgi_llm.tracing.settings import traces_url

if TYPE_CHECKING:
    from asgi_llm.config.schema import Deployment, Tracing
    from asgi_llm.context import LLMContext
    from asgi_llm.providers.transport import UpstreamRequest, UpstreamResponse, UpstreamTransport
    from asgi_llm.types import Scope

SCOPE_NAME = "asgi_llm"
_TRACE_HEADERS = (b"traceparent", b"tracestate")


class RequestTracer:
    """Makes the request and attempt spans; `exporter` replaces the OTLP exporter (tests pass
    the SDK's InMemorySpanExporter)."""

    def __init__(self, settings: Tracing, *, exporter: SpanExporter | None = None) -> None:
        self.settings = settings
        self._exporter = exporter
        self._provider: TracerProvider | None = None
        self._tracer: trace.Tracer | None = None
        self._lock = threading.Lock()
        self.propagator = TraceContextTextMapPropagator()

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Make the provider and its export thread (idempotent)."""
        with self._lock:
            if self._provider is not None:
                return
            settings = self.settings
            exporter = self._exporter
            if exporter is None:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                exporter = OTLPSpanExporter(
                    endpoint=traces_url(settings.otlp_endpoint),
                    headers=dict(settings.headers),
                    timeout=settings.timeout_s,
                )
            provider = TracerProvider(
                resource=Resource.create({"service.name": settings.service_name}),
                sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
            )
            provider.add_span_processor(BatchSpanProcessor(exporter))
            self._tracer = provider.get_tracer(SCOPE_NAME)
            self._provider = provider

    @property
    def tracer(self) -> trace.Tracer:
        if self._tracer is None:
            self.start()
        assert self._tracer is not None
        return self._tracer

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        provider = self._provider
        return provider.force_flush(int(timeout_s * 1000)) if provider is not None else True

    async def shutdown(self) -> None:
        """Export what is queued and stop the export thread (it blocks: not on the loop)."""
        provider, self._provider, self._tracer = self._provider, None, None
        if provider is not None:
            await asyncio.to_thread(provider.shutdown)

    # -- spans ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def request_span(self, scope: Scope, name: str, route: str) -> Iterator[None]:
        """The request's span, current while the request runs; its attributes are read off
        the context (`scope["state"]["llm"]`) when the request is over."""
        carrier: dict[str, str] = {}
        for key, value in scope["headers"]:
            if key in _TRACE_HEADERS:
                text = value.decode("latin-1")
                key_text = key.decode()
                carrier[key_text] = f"{carrier[key_text]},{text}" if key_text in carrier else text
        parent = self.propagator.extract(carrier) if carrier else None
        span = self.tracer.start_span(
            name,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": scope["method"], "http.route": route},
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        cancelled = False
        try:
            yield
        except BaseException:
            cancelled = True  # the exchange answers every error: only a cancellation gets here
            raise
        finally:
            otel_context.detach(token)
            if span.is_recording():
                state = scope.get("state")
                ctx: LLMContext | None = state.get("llm") if state else None
                if ctx is not None:
                    span.update_name(span_name(ctx, name))
                    settings = ctx.config.tracing
                    attributes = request_attributes(ctx, settings is not None and settings.capture_content)
                    span.set_attributes(attributes)
                    # A server span's error: a 5xx, or a stream cut after its 200 (a 4xx is the
                    # client's, per the HTTP server conventions: error.type says it, not the status).
                    if attributes.get("http.response.status_code", 0) >= 500 or ctx.stream_failure:
                        span.set_status(Status(StatusCode.ERROR))
                if cancelled:
                    span.set_attribute("error.type", "cancelled")
                    span.set_status(Status(StatusCode.ERROR))
            span.end()

    @contextlib.contextmanager
    def attempt_span(self, ctx: LLMContext, deployment: Deployment) -> Iterator[AttemptTrace]:
        """One upstream attempt, child of the current (request) span. The attempt wraps the
        deployment's transport in `AttemptTrace.transport` so the upstream gets its id."""
        span = self.tracer.start_span(
            attempt_span_name(ctx, deployment),
            kind=SpanKind.CLIENT,
            attributes=attempt_attributes(ctx, deployment),
        )
        attempt = AttemptTrace(span, self.propagator)
        error: BaseException | None = None
        try:
            yield attempt
        except BaseException as exc:
            error = exc
            raise
        finally:
            if span.is_recording():
                attributes = attempt_result(ctx, deployment, error)
                span.set_attributes(attributes)
                if "error.type" in attributes:
                    span.set_status(Status(StatusCode.ERROR))
            span.end()


class AttemptTrace:
    """The attempt span's side of one attempt: the upstream request carries its
    `traceparent` (and the client's `tracestate`), and its status code lands on the span."""

    __slots__ = ("propagator", "span")

    def __init__(self, span: trace.Span, propagator: TraceContextTextMapPropagator) -> None:
        self.span = span
        self.propagator = propagator

    def transport(self, inner: UpstreamTransport) -> UpstreamTransport:
        return _TracedTransport(inner, self)

    def outgoing(self, request: UpstreamRequest) -> UpstreamRequest:
        span = self.span
        headers = dict(request.headers)
        self.propagator.inject(headers, context=trace.set_span_in_context(span))
        if span.is_recording():
            address, port = _server(request.url)
            if address:  # the mock provider has no URL
                span.set_attribute("server.address", address)
                if port is not None:
                    span.set_attribute("server.port", port)
        return dataclasses.replace(request, headers=headers)


class _TracedTransport:
    __slots__ = ("inner", "attempt")

    def __init__(self, inner: UpstreamTransport, attempt: AttemptTrace) -> None:
        self.inner = inner
        self.attempt = attempt

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        response = await self.inner.send(self.attempt.outgoing(request))
        span = self.attempt.span
        if span.is_recording():
            span.set_attribute("http.response.status_code", response.status_code)
        return response

    async def aclose(self) -> None:  # the pool is the deployment's, not this attempt's
        pass


@functools.lru_cache(maxsize=1024)  # a deployment's URL is parsed once
def _server(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    port = parts.port
    if port is None:
        port = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.hostname or "", port


__all__ = ["AttemptTrace", "RequestTracer"]
