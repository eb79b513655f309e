"""The `auth:` section: API keys, JWT, introspection, the key store, roles, the audit log."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from asgi_llm.config.schema.base import FieldError, Section
from asgi_llm.config.urls import check_http_url, check_redis_url


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
    timeout_s: float = Field(0.5, gt=0, le=10)  # per Redis command; then on_unavailable's answer

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
