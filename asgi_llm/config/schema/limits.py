"""The `limits:` section: rate-limit rules and budgets."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from asgi_llm.config.schema.base import Section
from asgi_llm.config.urls import check_storage_uri


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
