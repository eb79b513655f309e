"""Models and their deployments: providers, presets' endpoints, cost, the mock's options."""

from __future__ import annotations

import importlib.util
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from asgi_llm.config.schema.base import FieldError, Section
from asgi_llm.config.schema.hosts import host_address, is_metadata_host
from asgi_llm.config.urls import check_http_url

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


class MockOptions(Section):
    """Behaviour of the built-in offline `mock` provider."""

    latency_ms: float = Field(0.0, ge=0, le=60_000)
    chunk_delay_ms: float = Field(0.0, ge=0, le=10_000)
    chunks: int = Field(8, ge=1, le=10_000)


_AWS_FIELDS = ("region", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "guardrail")


class BedrockGuardrail(Section):
    """A Bedrock guardrail applied to every Converse call of a deployment (guardrailConfig)."""

    # A guardrail's id, or its ARN (the shapes Bedrock's own API accepts).
    id: str = Field(
        min_length=1,
        max_length=2048,
        pattern=r"^([a-z0-9]+|arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+)$",
    )
    version: str = Field(pattern=r"^([1-9][0-9]{0,7}|DRAFT)$")  # a number, or DRAFT
    trace: Literal["enabled", "disabled", "enabled_full"] | None = None
    stream_processing_mode: Literal["sync", "async"] | None = None  # ConverseStream only

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        # `version: 1` in YAML is a number: the guardrail's version 1 all the same.
        return str(value) if type(value) is int else value


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
    guardrail: BedrockGuardrail | None = None
    # gemini, vertex (Gemini models): Google's own tools, added to every chat call.
    builtin_tools: tuple[Literal["google_search", "url_context"], ...] = ()

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
        if self.builtin_tools and (
            self.provider not in ("gemini", "vertex") or self.model.startswith("claude-")
        ):
            raise FieldError(
                ("builtin_tools",), "applies only to Gemini models (provider 'gemini' or 'vertex')"
            )
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
