"""OpenTelemetry tracing (extra `otel`; docs/observability.md, "Tracing").

Importing this package imports no OpenTelemetry: `asgi_llm.tracing.tracer` does, and only
the composition root imports it, when the config has `tracing:`.
"""

from asgi_llm.tracing.middleware import TracingMiddleware

__all__ = ["TracingMiddleware"]
