"""Metrics: MetricsMiddleware and its exporters (Prometheus, StatsD/DogStatsD, your own).

The Prometheus and StatsD exporters are imported when first configured, so a stack without
them never imports prometheus_client.
"""

from asgi_llm.metrics.exporter import BaseExporter, Exporter, ProxyState
from asgi_llm.metrics.middleware import MetricsMiddleware
from asgi_llm.metrics.record import RequestRecord

__all__ = ["BaseExporter", "Exporter", "MetricsMiddleware", "ProxyState", "RequestRecord"]
