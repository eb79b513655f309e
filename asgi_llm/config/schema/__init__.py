"""The config file's schema: immutable pydantic models, unknown keys refused, one module per
section. One snapshot of these is what every layer reads for the whole of a request.
"""

from asgi_llm.config.schema.auth import (
    GRANTABLE_ENDPOINTS,
    ApiKey,
    AuditLog,
    Auth,
    IntrospectionConfig,
    JWTConfig,
    KeyStore,
    Role,
)
from asgi_llm.config.schema.base import FieldError, Section
from asgi_llm.config.schema.cache import Cache, Semantic, SemanticJudge, SemanticThresholds
from asgi_llm.config.schema.deployments import (
    DEFAULT_BASE_URLS,
    KEYED_PROVIDERS,
    LOCAL_PRESETS,
    PRESET_BASE_URLS,
    Capability,
    Cost,
    Deployment,
    MockOptions,
    ModelConfig,
    Provider,
)
from asgi_llm.config.schema.hosts import METADATA_NAMES, host_address, is_metadata_host
from asgi_llm.config.schema.limits import Budget, LimitRule, Limits
from asgi_llm.config.schema.model import ConfigModel
from asgi_llm.config.schema.observability import Ledger, Metrics, Prometheus, StatsD, Tracing
from asgi_llm.config.schema.responses import Responses
from asgi_llm.config.schema.routing import Cooldown, LatencyOptions, Routing
from asgi_llm.config.schema.server import Admin, Reload, Server

__all__ = [
    "Admin",
    "ApiKey",
    "AuditLog",
    "Auth",
    "Budget",
    "Cache",
    "Capability",
    "ConfigModel",
    "Cooldown",
    "Cost",
    "DEFAULT_BASE_URLS",
    "Deployment",
    "FieldError",
    "GRANTABLE_ENDPOINTS",
    "IntrospectionConfig",
    "JWTConfig",
    "KEYED_PROVIDERS",
    "KeyStore",
    "LOCAL_PRESETS",
    "LatencyOptions",
    "Ledger",
    "LimitRule",
    "Limits",
    "METADATA_NAMES",
    "Metrics",
    "MockOptions",
    "ModelConfig",
    "PRESET_BASE_URLS",
    "Prometheus",
    "Provider",
    "Reload",
    "Responses",
    "Role",
    "Routing",
    "Section",
    "Semantic",
    "SemanticJudge",
    "SemanticThresholds",
    "Server",
    "StatsD",
    "Tracing",
    "host_address",
    "is_metadata_host",
]
