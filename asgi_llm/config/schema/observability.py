"""Where the facts of requests go: `metrics:` (Prometheus, StatsD), `tracing:`, `ledger:`."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from asgi_llm.config.schema.base import Section
from asgi_llm.config.urls import check_host


class Prometheus(Section):
    """`GET <path>` answers in the Prometheus text format (docs/observability.md)."""

    path: str = Field("/metrics", pattern=r"^/[A-Za-z0-9_.\-/]*$", max_length=128)

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        from asgi_llm.request import ENDPOINTS  # the LLM and admin routes keep their paths

        if value in ENDPOINTS or value in ("/healthz", "/readyz"):
            raise ValueError(f"{value!r} is already a route of the proxy")
        return value


class StatsD(Section):
    """UDP datagrams with DogStatsD tags; never blocks, drops (and counts) when it cannot send."""

    host: str = Field("127.0.0.1", min_length=1, max_length=253)
    port: int = Field(8125, ge=1, le=65535)
    prefix: str = Field("asgi_llm", pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$", max_length=64)
    tags: dict[str, str] = {}  # constant tags on every metric, e.g. {env: prod, service: llm}
    max_packet_bytes: int = Field(1432, ge=512, le=65_000)  # below the path MTU: no fragments

    _check_host = field_validator("host")(classmethod(lambda cls, v: check_host(v)))

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key or len(key) > 64 or not all(c.isalnum() or c in "_.-/" for c in key):
                raise ValueError(f"tag name {key!r} must be 1-64 letters, digits, _ . - /")
        return value


class Tracing(Section):
    """OpenTelemetry spans over OTLP/HTTP (extra `otel`; docs/observability.md, "Tracing")."""

    otlp_endpoint: str  # the collector's base URL (http://host:4318); /v1/traces is added
    service_name: str = Field("asgi-llm", min_length=1, max_length=128)
    sample_ratio: float = Field(1.0, ge=0, le=1)  # of traces begun here; a client's sampled flag is followed
    capture_content: bool = False  # the request's messages in the request span (redacted of URL passwords)
    headers: dict[str, str] = {}  # sent with each export (an API key of the backend): redacted in views
    timeout_s: float = Field(10.0, gt=0, le=120)  # per export, off the request path

    @field_validator("otlp_endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        from asgi_llm.tracing.settings import check_otlp_endpoint

        return check_otlp_endpoint(value)

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        from asgi_llm.tracing.settings import check_export_headers

        return check_export_headers(value)

    @model_validator(mode="after")
    def _check_extra(self) -> Tracing:
        from asgi_llm.tracing.settings import check_otel_installed

        check_otel_installed()
        return self


class Metrics(Section):
    prometheus: Prometheus | None = None
    statsd: StatsD | None = None
    # Distinct values one label may take (model, deployment, error code) before further new
    # values are counted as `other`: a bound on series whatever the config or upstream says.
    max_label_values: int = Field(500, ge=1, le=100_000)


class Ledger(Section):
    """The usage ledger (docs/ledger.md): one record per request, written off the request path."""

    url: str = "sqlite:///asgi-llm.db"  # or postgresql://user:password@host:5432/database
    store_content: bool = False  # prompt and completion text too (redacted of credentials)
    user_header: str = Field("x-llm-user", pattern=r"^[a-z0-9][a-z0-9\-_]*$", max_length=64)
    queue_size: int = Field(10_000, ge=1, le=1_000_000)  # records waiting; past it, dropped
    batch_size: int = Field(500, ge=1, le=10_000)
    flush_interval_s: float = Field(1.0, gt=0, le=60)
    spill_max: int = Field(100_000, ge=0, le=10_000_000)  # records held while the database is down
    retention_days: float | None = Field(None, gt=0)  # None: keep every record
    drain_timeout_s: float = Field(5.0, ge=0, le=300)  # at shutdown, for what is still queued
    timeout_s: float = Field(5.0, gt=0, le=120)  # per database operation

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        from asgi_llm.ledger.urls import check_ledger_url

        return check_ledger_url(value)
