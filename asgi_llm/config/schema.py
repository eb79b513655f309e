"""The config file's schema: immutable pydantic models, unknown keys refused.

One snapshot of these is what every layer reads for the whole of a request.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import socket
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from asgi_llm.config.catalog import normalize_model_name
from asgi_llm.config.urls import (
    check_cache_backend,
    check_host,
    check_http_url,
    check_redis_url,
    check_storage_uri,
    check_store_url,
)

Provider = Literal[
    "openai",
    "openai-compatible",
    "azure",
    "anthropic",
    "gemini",
    "vertex",
    "bedrock",
    "mock",
    # Named presets: OpenAI-compatible services whose base URL and quirks are known.
    "groq",
    "mistral",
    "deepseek",
    "together",
    "fireworks",
    "openrouter",
    "xai",
    "cerebras",
    "ollama",
    "vllm",
    "lmstudio",
]
Capability = Literal["vision", "tools", "json_mode", "streaming", "embeddings", "completions"]

# The presets' endpoints (providers/presets.py has their quirks). `vllm` has none: its
# default port, 8000, is asgi-llm's own, so a default would send the proxy to itself.
PRESET_BASE_URLS: dict[str, str] = {
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "together": "https://api.together.xyz/v1",
    "fireworks": "https://api.fireworks.ai/inference/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "xai": "https://api.x.ai/v1",
    "cerebras": "https://api.cerebras.ai/v1",
    "ollama": "http://127.0.0.1:11434/v1",
    "lmstudio": "http://127.0.0.1:1234/v1",
}
LOCAL_PRESETS = frozenset({"ollama", "vllm", "lmstudio"})  # servers of one's own: no key
DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com/v1",
    "gemini": "https://generativelanguage.googleapis.com",
    **PRESET_BASE_URLS,
}
# Hosted services that answer nothing without a key: a deployment without one is an error.
KEYED_PROVIDERS = frozenset({"gemini", *PRESET_BASE_URLS}) - LOCAL_PRESETS
_VERTEX_FIELDS = ("project", "location", "credentials")


class FieldError(ValueError):
    """A check across fields, raised by a section's validator about a field below it:
    `loc` (`("aliases", 1)`) is appended to the section's path in the error message."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Cost(Section):
    """USD per million tokens of each kind (asgi_llm/accounting.py prices a Usage with it).
    An unset price falls back: cache reads and writes to the input price, 1-hour writes to
    the (5-minute) write price, reasoning to the output price."""

    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)
    cache_read_per_mtok: float | None = Field(None, ge=0)
    cache_write_per_mtok: float | None = Field(None, ge=0)
    cache_write_1h_per_mtok: float | None = Field(None, ge=0)
    reasoning_per_mtok: float | None = Field(None, ge=0)

    def per_kind(self) -> tuple[float, ...]:
        """USD per million tokens for each of context.TOKEN_KINDS, in that order."""
        write = self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok
        return (
            self.input_per_mtok,
            self.input_per_mtok if self.cache_read_per_mtok is None else self.cache_read_per_mtok,
            write,
            write if self.cache_write_1h_per_mtok is None else self.cache_write_1h_per_mtok,
            self.output_per_mtok,
            self.output_per_mtok if self.reasoning_per_mtok is None else self.reasoning_per_mtok,
        )


METADATA_NAMES = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
_METADATA_V6 = (ipaddress.ip_network("fd00:ec2::/32"),)  # AWS IMDS over IPv6 (fd00:ec2::254)


def host_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a URL host denotes, legacy IPv4 spellings included (`2852039166`,
    `0xA9FEA9FE`, `169.254.43518`: what a resolver would connect to); None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition form carries (mapped, 6to4, Teredo, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_metadata_host(host: str) -> bool:
    """A link-local address in any spelling, or a well-known cloud metadata name."""
    if host.lower().rstrip(".") in METADATA_NAMES:
        return True
    address = host_address(host)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in net for net in _METADATA_V6):
            return True
        address = _embedded_v4(address) or address
    return address.is_link_local


class MockOptions(Section):
    """Behaviour of the built-in offline `mock` provider."""

    latency_ms: float = Field(0.0, ge=0, le=60_000)
    chunk_delay_ms: float = Field(0.0, ge=0, le=10_000)
    chunks: int = Field(8, ge=1, le=10_000)


_AWS_FIELDS = ("region", "aws_access_key_id", "aws_secret_access_key", "aws_session_token")


class Deployment(Section):
    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    provider: Provider
    model: str = Field(min_length=1, max_length=256)
    base_url: str | None = None
    allow_link_local: bool = False  # a base_url on a link-local address (THREATS H8): say so
    api_key: str | None = None
    api_version: str | None = None  # azure
    cost: Cost = Cost()
    capabilities: tuple[Capability, ...] = ()
    context_window: int | None = Field(None, gt=0)
    weight: float = Field(1.0, gt=0)
    timeout_s: float = Field(600.0, gt=0, le=3600)  # total, streams included
    connect_timeout_s: float = Field(5.0, gt=0, le=600)
    first_byte_timeout_s: float = Field(120.0, gt=0, le=3600)
    idle_timeout_s: float = Field(60.0, gt=0, le=3600)  # between two streamed chunks
    mock: MockOptions | None = None
    # vertex: the Google Cloud project and region, and the service-account key file (JSON).
    project: str | None = Field(None, max_length=128, pattern=r"^[a-z0-9][a-z0-9.:\-]*$")  # id or number
    location: str | None = Field(None, max_length=64, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    credentials: str | None = Field(None, min_length=1, max_length=4096)
    # bedrock: signing region and credentials (else AWS_REGION, AWS_ACCESS_KEY_ID, ...).
    region: str | None = Field(None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
    aws_access_key_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^\S+$")
    aws_secret_access_key: str | None = Field(None, min_length=1, max_length=256)
    aws_session_token: str | None = Field(None, min_length=1, max_length=8192)

    @field_validator("credentials")
    @classmethod
    def _check_credentials(cls, value: str | None) -> str | None:
        # The key itself pasted here would be shown by GET /admin/config, which shows the path.
        if value is not None and (value.lstrip().startswith("{") or "PRIVATE KEY" in value):
            raise ValueError("must be the path of the key file, not its contents")
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(check_http_url(value))
        if parts.username or parts.password:
            raise ValueError("must not carry credentials; use api_key")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        address = host_address(parts.hostname or "")  # check_http_url made sure there is one
        if address is not None and address.is_unspecified:
            raise ValueError("points at the unspecified address")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_provider_fields(self) -> Deployment:
        host = urlsplit(self.base_url).hostname if self.base_url else None
        if host is not None and not self.allow_link_local and is_metadata_host(host):
            # Cloud metadata endpoints live there (169.254.169.254, fd00:ec2::254, fe80::/10).
            raise ValueError(
                "base_url points at a link-local (metadata) address; set "
                "allow_link_local: true if that is really the upstream"
            )
        if self.provider in ("openai-compatible", "azure") and not self.base_url:
            raise ValueError(f"base_url is required for provider {self.provider!r}")
        if self.provider == "azure" and not self.api_version:
            raise ValueError("api_version is required for provider 'azure'")
        if self.mock is not None and self.provider != "mock":
            raise ValueError("'mock' options apply only to provider 'mock'")
        if self.provider in KEYED_PROVIDERS and not self.api_key:
            raise FieldError(("api_key",), f"is required for provider {self.provider!r}")
        if self.provider == "vllm" and not self.base_url:
            raise FieldError(
                ("base_url",), "is required for provider 'vllm' (its default port is asgi-llm's own)"
            )
        self._check_vertex_fields()
        self._check_aws_fields()
        return self

    def _check_aws_fields(self) -> None:
        given = [name for name in _AWS_FIELDS if getattr(self, name) is not None]
        if given and self.provider != "bedrock":
            raise FieldError((given[0],), "applies only to provider 'bedrock'")
        if self.provider != "bedrock":
            return
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            missing, given_one = (
                ("aws_secret_access_key", "aws_access_key_id")
                if self.aws_secret_access_key is None
                else ("aws_access_key_id", "aws_secret_access_key")
            )
            raise FieldError((missing,), f"is required with {given_one}")
        if self.aws_session_token is not None and self.aws_access_key_id is None:
            raise FieldError(("aws_session_token",), "needs aws_access_key_id and aws_secret_access_key")
        if importlib.util.find_spec("botocore") is None:  # found, not imported: load stays cheap
            raise FieldError(
                ("provider",), "provider 'bedrock' needs botocore: pip install 'asgi-llm[bedrock]'"
            )

    def _check_vertex_fields(self) -> None:
        if self.provider != "vertex":
            for name in _VERTEX_FIELDS:
                if getattr(self, name) is not None:
                    raise FieldError((name,), "applies only to provider 'vertex'")
            return
        if self.project is None:
            raise FieldError(("project",), "is required for provider 'vertex' (the Google Cloud project id)")
        if self.location is None:
            raise FieldError(("location",), "is required for provider 'vertex' (e.g. us-central1, or global)")
        if self.credentials is None and not self.api_key:
            raise FieldError(
                ("credentials",),
                "is required for provider 'vertex': a service-account key file "
                "(or an access token as api_key)",
            )
        if self.credentials is not None and self.api_key:
            raise FieldError(("api_key",), "and credentials are two ways to authenticate: give one")

    @property
    def url(self) -> str:
        return self.base_url or DEFAULT_BASE_URLS.get(self.provider, "")


class ModelConfig(Section):
    name: str = Field(min_length=1, max_length=256)
    aliases: tuple[str, ...] = ()
    deployments: tuple[Deployment, ...]
    strategy: Literal["ordered", "weighted", "cost", "latency"] | None = None

    @field_validator("deployments")
    @classmethod
    def _check_deployments(cls, value: tuple[Deployment, ...]) -> tuple[Deployment, ...]:
        if not value:
            raise ValueError("a model needs at least one deployment")
        return value


class Cooldown(Section):
    failures: int = Field(3, ge=1)
    window_s: float = Field(60.0, gt=0)
    seconds: float = Field(30.0, gt=0)
    max_seconds: float = Field(300.0, gt=0)  # repeated cooldowns double up to this


class LatencyOptions(Section):
    decay_s: float = Field(10.0, gt=0)  # EWMA time constant
    explore: float = Field(0.05, ge=0, le=1)  # share of requests that probe a random candidate


class Routing(Section):
    strategy: Literal["ordered", "weighted", "cost", "latency"] = "ordered"
    retries: int = Field(2, ge=0, le=10)
    fallbacks: dict[str, tuple[str, ...]] = {}
    cooldown: Cooldown = Cooldown()
    latency: LatencyOptions = LatencyOptions()
    max_retry_after_s: float = Field(5.0, ge=0, le=300)  # longest 429 retry-after waited out
    retry_budget: float = Field(0.2, ge=0, le=1)  # retries in flight / requests in flight
    min_retries_in_flight: int = Field(3, ge=0)
    default_max_tokens: int = Field(1024, ge=1)  # output estimate when a request sets none
    # Cooldowns shared by a fleet (routing/fleet.py): unset, each replica keeps its own.
    redis_url: str | None = None
    redis_prefix: str = Field(
        "asgi_llm:routing", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$"
    )

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        return None if value is None else check_redis_url(value)


class ApiKey(Section):
    id: str = Field(min_length=1, max_length=128)
    key_sha256: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    roles: tuple[str, ...] = ()
    tenant: str | None = None


class JWTConfig(Section):
    jwks_url: str
    issuer: str = Field(min_length=1)  # required: a JWT config without iss/aud does not load
    audience: str = Field(min_length=1)
    # Public-key algorithms only, pinned here: never taken from a token's header.
    algorithms: tuple[
        Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"], ...
    ] = Field(("RS256",), min_length=1)
    roles_claim: str = "roles"
    tenant_claim: str | None = None
    subject_claim: str = "sub"
    leeway_s: float = Field(30.0, ge=0, le=60)
    jwks_ttl_s: float = Field(600.0, ge=1)  # refresh period of the key set
    jwks_min_refresh_s: float = Field(30.0, ge=0)  # an unknown kid refetches at most this often
    jwks_max_stale_s: float = Field(3600.0, ge=0)  # serve cached keys this long while the IdP is down

    _check_url = field_validator("jwks_url")(classmethod(lambda cls, v: check_http_url(v)))


class IntrospectionConfig(Section):
    url: str
    client_id: str
    client_secret: str
    cache_ttl_s: float = Field(30.0, ge=0, le=600)
    negative_cache_ttl_s: float = Field(5.0, ge=0, le=60)
    roles_claim: str = "roles"
    tenant_claim: str | None = None
    subject_claim: str = "sub"

    _check_url = field_validator("url")(classmethod(lambda cls, v: check_http_url(v)))


class KeyStore(Section):
    """Keys shared by a fleet in Redis: created and revoked through the admin API."""

    url: str
    prefix: str = "asgi_llm"
    cache_ttl_s: float = Field(5.0, ge=0, le=300)  # bound on revocation latency per replica
    # Redis down: config keys are served (open) or refused with 503 (closed); docs/auth.md.
    on_unavailable: Literal["open", "closed"] = "open"

    _check_url = field_validator("url")(classmethod(lambda cls, v: check_redis_url(v)))

    @model_validator(mode="before")
    @classmethod
    def _one_slot_on_a_cluster(cls, data: object) -> object:
        # The store's MULTIs span its keys: on a Redis Cluster they share one hash tag, `{prefix}`
        # (docs/fleet.md). Elsewhere the layout stays as it was, so keys minted before remain.
        if isinstance(data, dict) and str(data.get("url", "")).startswith("redis+cluster"):
            prefix = str(data.get("prefix", "asgi_llm"))
            if "{" not in prefix:
                data = {**data, "prefix": "{" + prefix + "}"}
        return data


# The endpoint names auth checks a role's `endpoints` against (request.ENDPOINTS' names, less
# `messages`, which the exchange turns into a chat request, and the admin routes, which
# `admin: true` grants). tests/config/test_schema.py holds the two lists together.
GRANTABLE_ENDPOINTS = ("chat", "completions", "embeddings", "models", "responses")


class Role(Section):
    models: tuple[str, ...] = ()  # globs over model names and aliases (config/checks.py warns)
    endpoints: tuple[str, ...] = ()
    admin: bool = False

    @field_validator("endpoints")
    @classmethod
    def _check_endpoints(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # An unknown name would load and then refuse every request with 403: say so now.
        for j, name in enumerate(value):
            if name == "*" or name in GRANTABLE_ENDPOINTS:
                continue
            hint = ""
            if name == "messages":
                hint = " (/v1/messages is granted by chat)"
            elif name.startswith("admin"):
                hint = " (the admin API is granted by admin: true)"
            raise FieldError(
                (j,), f"unknown endpoint {name!r}: use {', '.join(GRANTABLE_ENDPOINTS)} or *{hint}"
            )
        return value


class AuditLog(Section):
    path: str | None = None
    logger: str | None = None


class Auth(Section):
    api_keys: tuple[ApiKey, ...] = ()
    key_store: KeyStore | None = None
    jwt: JWTConfig | None = None
    oauth2_introspection: IntrospectionConfig | None = None
    roles: dict[str, Role] = {}
    audit_log: AuditLog | None = None
    # Failed authentications per client address before it gets 429 (0: never), and the window.
    failure_limit: int = Field(20, ge=0, le=1_000_000)
    failure_window_s: float = Field(60.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _check_roles(self) -> Auth:
        ids: set[str] = set()
        for i, key in enumerate(self.api_keys):
            for j, role in enumerate(key.roles):
                if role not in self.roles:
                    raise FieldError(("api_keys", i, "roles", j), f"unknown role {role!r}")
            if key.id in ids:
                raise FieldError(("api_keys", i, "id"), f"api key id {key.id!r} is used twice")
            ids.add(key.id)
        return self


class LimitRule(Section):
    per: Literal["key", "tenant", "model", "key_model", "ip", "global"]
    model: str | None = None  # glob on the resolved model name; the rule applies only there
    requests: str | None = None  # `limits` notation: "60/minute" or "10/second;600/minute"
    tokens: str | None = None
    concurrency: int | None = Field(None, ge=1)

    @field_validator("requests", "tokens")
    @classmethod
    def _check_rate(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import limits  # the notation is the `limits` library's: let it judge

        try:
            items = limits.parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate such as '60/minute' or '10/second;600/minute'"
            ) from None
        if not items or any(item.amount < 1 for item in items):
            raise ValueError(f"{value!r} must allow at least 1 per window")
        return value

    @model_validator(mode="after")
    def _check_some_limit(self) -> LimitRule:
        if self.requests is None and self.tokens is None and self.concurrency is None:
            raise ValueError("a rule needs at least one of requests, tokens, concurrency")
        return self


class Budget(Section):
    per: Literal["key", "tenant", "global"]
    usd: float = Field(gt=0)
    period: Literal["day", "week", "month"] = "month"


class Limits(Section):
    storage: str = "memory://"
    strategy: Literal["moving-window", "fixed-window", "sliding-window-counter"] = "moving-window"
    rules: tuple[LimitRule, ...] = ()
    budgets: tuple[Budget, ...] = ()
    strict: bool = False
    replicas: int = Field(1, ge=1)
    trusted_proxies: tuple[str, ...] = ()
    # asgi-llm's extensions (docs/limits.md): storage key prefix (fleets sharing one Redis
    # keep apart by it), the deadline of one storage round trip before the local fallback,
    # and the completion tokens reserved when a request names no max_tokens.
    key_prefix: str = Field("asgi-llm", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
    timeout_s: float = Field(0.5, gt=0, le=30)
    default_max_tokens: int = Field(1024, ge=1)

    _check_storage = field_validator("storage")(classmethod(lambda cls, v: check_storage_uri(v)))

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value


class SemanticThresholds(Section):
    """Stricter semantic thresholds for some models (names or aliases) and tenants: a floor
    that neither the default nor a request's x-cache-threshold goes under."""

    models: dict[str, float] = {}
    tenants: dict[str, float] = {}

    @field_validator("models", "tenants")
    @classmethod
    def _check_range(cls, value: dict[str, float]) -> dict[str, float]:
        for name, threshold in value.items():
            if not 0.5 <= threshold <= 1:
                raise ValueError(f"{name!r}: a threshold is from 0.5 to 1, not {threshold}")
        return value


class SemanticJudge(Section):
    """A model asked whether a gray-zone candidate needs the same answer (docs/caching.md)."""

    model: str  # a served model (name or alias)
    low: float = Field(0.8, ge=0.5, lt=1)  # the gray zone: from here to the threshold
    timeout_s: float = Field(2.0, gt=0, le=30)  # past it: a miss
    max_tokens: int = Field(2, ge=1, le=64)


class Semantic(Section):
    """The semantic tier (extra `semantic`): off unless enabled. See docs/caching.md."""

    enabled: bool = False
    threshold: float = Field(0.9, gt=0, le=1)
    thresholds: SemanticThresholds = SemanticThresholds()
    judge: SemanticJudge | None = None  # off: no second stage
    model: str = "all-MiniLM-L6-v2"  # one of cache/models.py KNOWN (its package installed)
    model_path: str | None = None  # a local sentence-transformers dir; default: the packaged model
    backend: Literal["onnx", "torch"] = "onnx"  # same vectors; onnx is ~4x faster on CPU
    onnx_cache_dir: str | None = None  # where the exported graph is kept (~/.cache/asgi-llm)
    guards: bool = True  # numbers, negations, order and names that differ veto a hit
    index: Literal["exact", "hnsw"] = "exact"
    max_entries: int = Field(100_000, ge=1)  # per replica, all namespaces together
    embedding_cache_entries: int = Field(10_000, ge=0)
    batch_window_ms: float = Field(0.0, ge=0, le=100)  # 0: batch whatever queued meanwhile
    max_batch: int = Field(32, ge=1, le=512)
    threads: int = Field(1, ge=1, le=64)  # torch threads: 1 keeps p99 low on small boxes

    @model_validator(mode="after")
    def _check_model(self) -> Semantic:
        if self.enabled:  # cheap: looks for the package or directory, imports nothing
            from asgi_llm.cache.models import problem

            found = problem(self.model, self.model_path)
            if found is not None:
                raise FieldError(("model_path" if self.model_path else "model",), found)
        if self.judge is not None and self.judge.low >= self.threshold:
            raise FieldError(("judge", "low"), f"must be under the threshold ({self.threshold})")
        return self


class Cache(Section):
    backend: str = "memory://"
    ttl_s: float = Field(3600.0, gt=0)
    namespace_by: Literal["tenant", "key", "global"] = "tenant"
    max_entries: int = Field(10_000, ge=1)
    semantic: Semantic = Semantic()
    max_bytes: int = Field(256 * 1024 * 1024, ge=1024)  # memory:// only
    max_entry_bytes: int = Field(1024 * 1024, ge=1024)  # larger answers are not stored
    max_ttl_s: float = Field(7 * 86400.0, gt=0)  # cap on a request's x-cache-ttl
    key_prefix: str = Field("asgi_llm:cache", pattern=r"^[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-]+)*$")
    timeout_s: float = Field(0.25, gt=0, le=10)  # per Redis operation; then bypass
    max_temperature: float | None = Field(None, ge=0, le=2)  # None: cache every request
    single_flight: bool = True
    flight_wait_s: float = Field(30.0, gt=0, le=600)  # a follower waits this long for the leader

    _check_backend = field_validator("backend")(classmethod(lambda cls, v: check_cache_backend(v)))


class Responses(Section):
    """Where `POST /v1/responses` keeps what `store: true` asks for (docs/configuration.md).
    Absent, responses are kept in memory with these defaults."""

    store: str = "memory://"  # or redis://host:6379/3: shared by replicas and workers
    ttl_s: float = Field(30 * 86400.0, gt=0)  # OpenAI's default retention
    key_prefix: str = Field(
        "asgi_llm:responses", max_length=128, pattern=r"^[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-]+)*$"
    )
    max_entries: int = Field(10_000, ge=1)  # memory:// only
    max_bytes: int = Field(100 * 1024 * 1024, ge=1024)  # memory:// only
    timeout_s: float = Field(0.5, gt=0, le=10)  # per Redis command; then 503

    _check_store = field_validator("store")(classmethod(lambda cls, v: check_store_url(v)))


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


class Reload(Section):
    """Live config: the file watcher and the fleet's Redis reload channel (docs/configuration.md)."""

    watch: bool = True  # poll the config file (and its symlink target) and reload on change
    poll_interval_s: float = Field(0.5, ge=0.05, le=60)
    redis_url: str | None = None
    channel: str = Field("asgi_llm:config", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        return None if value is None else check_redis_url(value)


class Server(Section):
    """asgi-llm's own extension: request-path limits of the exchange."""

    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    body_timeout_s: float = Field(30.0, gt=0, le=3600)  # a slow (slowloris) body gets 408
    max_response_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    # Where the LLM and admin routes live: "/llm" serves /llm/v1/chat/completions,
    # /llm/admin/config, ...; every other path passes through to the app inside.
    path_prefix: str = Field("", pattern=r"^(/[A-Za-z0-9_.\-]+)*$", max_length=128)


class Admin(Section):
    """The admin dashboard (docs/dashboard.md): off unless `ui: true`."""

    ui: bool = False
    ui_path: str = Field("/admin/ui", pattern=r"^(/[A-Za-z0-9_.\-]+)+$", max_length=128)
    # Signs the dashboard's session cookies: every replica (and worker) of a fleet needs the
    # same one ("${ASGI_LLM_UI_SECRET}"); without it each process makes its own at start.
    ui_secret: str | None = Field(None, min_length=32, max_length=512)
    ui_session_ttl_s: float = Field(3600.0, ge=60, le=7 * 86400)

    @field_validator("ui_path")
    @classmethod
    def _check_ui_path(cls, value: str) -> str:
        from asgi_llm.request import ENDPOINTS

        if any(path == value or path.startswith(value + "/") for path in ENDPOINTS) or value in (
            "/healthz",
            "/readyz",
        ):
            raise ValueError(f"{value!r} would hide routes of the proxy")
        return value


class ConfigModel(Section):
    models: tuple[ModelConfig, ...] = ()
    routing: Routing = Routing()
    auth: Auth | None = None
    limits: Limits | None = None
    cache: Cache | None = None
    responses: Responses = Responses()
    metrics: Metrics | None = None
    ledger: Ledger | None = None
    tracing: Tracing | None = None
    reload: Reload = Reload()
    server: Server = Server()
    admin: Admin | None = None

    @model_validator(mode="after")
    def _check_names(self) -> ConfigModel:
        seen_ids: set[str] = set()
        names: dict[str, str] = {}  # normalized name or alias -> the model answering to it
        for i, model in enumerate(self.models):
            for j, deployment in enumerate(model.deployments):
                if deployment.id in seen_ids:
                    raise FieldError(
                        ("models", i, "deployments", j, "id"),
                        f"deployment id {deployment.id!r} is used twice",
                    )
                seen_ids.add(deployment.id)
            fields: list[tuple[str | int, ...]] = [
                ("name",),
                *(("aliases", j) for j in range(len(model.aliases))),
            ]
            for field, name in zip(fields, (model.name, *model.aliases), strict=True):
                # The catalog's own normaliser: two names accepted here never share a key there.
                key = normalize_model_name(name)
                if key is None:
                    raise FieldError(
                        ("models", i, *field),
                        f"{name!r} cannot be a model name "
                        "(empty, over 256 characters, or with an invisible character)",
                    )
                if key in names:
                    raise FieldError(
                        ("models", i, *field),
                        f"model name or alias {name!r} is used twice: model {names[key]!r} answers to it "
                        "(names compare without case, width or surrounding space)",
                    )
                names[key] = model.name
        for source, targets in self.routing.fallbacks.items():
            for loc, name in [(("routing", "fallbacks", source), source)] + [
                (("routing", "fallbacks", source, j), target) for j, target in enumerate(targets)
            ]:
                if normalize_model_name(name) not in names:
                    raise FieldError(loc, f"unknown model {name!r}")
        if self.cache is not None:
            for name in self.cache.semantic.thresholds.models:
                if normalize_model_name(name) not in names:
                    field = ("cache", "semantic", "thresholds", "models", name)
                    raise FieldError(field, f"unknown model {name!r}")
            judge = self.cache.semantic.judge
            if judge is not None and normalize_model_name(judge.model) not in names:
                raise FieldError(("cache", "semantic", "judge", "model"), f"unknown model {judge.model!r}")
        return self
