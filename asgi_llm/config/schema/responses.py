"""The `responses:` section: where stored Responses API answers live."""

from __future__ import annotations

from pydantic import Field, field_validator

from asgi_llm.config.schema.base import Section
from asgi_llm.config.urls import check_store_url


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
