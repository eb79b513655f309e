"""The `routing:` section: strategy, cooldowns, latency tracking, fallbacks, retries."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from asgi_llm.config.schema.base import Section
from asgi_llm.config.urls import check_redis_url


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
