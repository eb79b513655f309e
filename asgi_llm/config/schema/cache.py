"""The `cache:` section: the exact tier, the semantic tier and its judge."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from asgi_llm.config.schema.base import FieldError, Section
from asgi_llm.config.urls import check_cache_backend


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
