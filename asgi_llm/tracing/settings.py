"""The checks behind the config's `tracing:` section (config/schema/observability.py calls them), so a bad
endpoint or a missing extra fails `check-config` instead of the server at startup.

Plain stdlib: nothing here imports OpenTelemetry.
"""

from __future__ import annotations

import importlib.util
import re
from urllib.parse import urlsplit

from asgi_llm.config.urls import check_http_url

TRACES_PATH = "/v1/traces"  # OTLP/HTTP's path for spans
# The packages of the `otel` extra that tracing imports (found, not imported: loading stays cheap).
OTEL_MODULES = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$")  # an HTTP header name


def check_otlp_endpoint(value: str) -> str:
    """An http(s) URL of an OTLP/HTTP receiver: the base (`http://host:4318`) or the full
    traces URL (`.../v1/traces`). No credentials in it: they go in `tracing.headers`, which
    every view redacts."""
    try:
        check_http_url(value)
    except ValueError as exc:
        raise ValueError(f"{exc} (the OTLP/HTTP receiver, e.g. http://collector:4318)") from None
    parts = urlsplit(value)
    if "@" in parts.netloc:
        raise ValueError("must not hold credentials: put them in tracing.headers")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or a fragment")
    return value


def traces_url(endpoint: str) -> str:
    """Where spans are posted: the endpoint with `/v1/traces` added unless it ends with it."""
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def check_export_headers(value: dict[str, str]) -> dict[str, str]:
    for name, header in value.items():
        if not _TOKEN.match(name):
            raise ValueError(f"header name {name!r} must be 1-64 characters of an HTTP token")
        if not header.isprintable() or len(header) > 8192:
            raise ValueError(f"the value of header {name!r} must be printable, at most 8192 characters")
    return value


def check_otel_installed() -> None:
    for module in OTEL_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            raise ValueError("tracing needs OpenTelemetry: pip install 'asgi-llm[otel]'")


__all__ = ["TRACES_PATH", "check_export_headers", "check_otel_installed", "check_otlp_endpoint", "traces_url"]
