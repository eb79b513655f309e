"""Tracing fixtures: a stack built with the SDK's InMemorySpanExporter behind the real
BatchSpanProcessor, and a fake upstream (a real loopback server) that records the
`traceparent` each attempt carries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asgi_llm import Config, build_app
from asgi_llm.app import LLMApp
from tests.conftest import upstream_model
from tests.fakes.upstream import Behavior, FakeUpstream

OTLP = "http://127.0.0.1:9"  # never reached: the in-memory exporter replaces the OTLP one
CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"


class Traced:
    """A built stack and the spans it exported (flushed on each read)."""

    def __init__(self, app: LLMApp, exporter: InMemorySpanExporter) -> None:
        self.app = app
        self.exporter = exporter

    def spans(self) -> list[ReadableSpan]:
        tracer = self.app.services.tracer
        assert tracer is not None
        assert tracer.force_flush()
        return list(self.exporter.get_finished_spans())

    def one(self, kind: str) -> ReadableSpan:
        (span,) = [s for s in self.spans() if s.kind.name == kind]
        return span

    def of_kind(self, kind: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.kind.name == kind]


def config(upstream: FakeUpstream | None = None, **extra: Any) -> dict[str, Any]:
    tracing = {"otlp_endpoint": OTLP, **extra.pop("tracing", {})}
    models = [upstream_model("m", upstream.base_url)] if upstream is not None else []
    return {"models": models, "tracing": tracing, **extra}


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[FakeUpstream]:
    with FakeUpstream("tracing") as server:
        yield server


@pytest.fixture
def upstream(upstream_server: FakeUpstream) -> FakeUpstream:
    upstream_server.reset()
    upstream_server.default = Behavior()
    return upstream_server


@pytest.fixture
def traced(asgi_client: Callable[..., Any]) -> Callable[..., tuple[Traced, Any]]:
    """Factory: (Traced, an in-process client) for a config dict (tracing added by `config`)."""

    def make(data: dict[str, Any]) -> tuple[Traced, Any]:
        exporter = InMemorySpanExporter()
        app = build_app(Config.from_dict(data), span_exporter=exporter)
        return Traced(app, exporter), asgi_client(app=app)

    return make


def hex_id(value: int, digits: int) -> str:
    return f"{value:0{digits}x}"


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})
