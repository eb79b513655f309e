"""Cache keys: a SHA-256 over a canonical encoding of everything that shapes the answer.

Whole-request hashing is the point: a parameter this module has never heard of is part of
the key, so a new upstream option can only cost a miss, never cause a wrong hit (GPTCache
keyed on the last message only; LiteLLM left the team out of the key).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from asgi_llm.context import Principal

# Fields that never change what the model answers: left out so that a stream and a plain
# request, or two end users of one tenant, share an entry. Everything else is in the key.
IGNORED_FIELDS = frozenset({"model", "stream", "stream_options", "user", "metadata", "store", "service_tier"})
GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class CacheKey:
    """Where an entry lives: `digest` names it, the two short digests let purges find it."""

    namespace: str
    model: str
    endpoint: str
    digest: str  # sha256 hex of the canonical request, namespace and model included

    def storage_key(self, prefix: str) -> str:
        return f"{prefix}:e:{short_digest(self.namespace)}:{short_digest(self.model)}:{self.digest}"


@functools.lru_cache(maxsize=4096)  # namespaces and models: the same few on every request
def short_digest(value: str) -> str:
    """A fixed-alphabet stand-in for a namespace or model in storage keys and purge patterns,
    so no client-chosen text ever reaches a Redis key or a SCAN pattern (THREATS K5)."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def namespace_for(principal: Principal | None, namespace_by: str) -> str:
    """Whose entries a request may see.

    Without a principal (no auth, or the cache mounted outside auth) there is no tenant to
    tell apart: one shared namespace. A principal without a tenant never falls back to the
    shared namespace: it gets its own.
    """
    if principal is None or namespace_by == GLOBAL:
        return GLOBAL
    if namespace_by == "tenant" and principal.tenant:
        return f"tenant:{principal.tenant}"
    return f"key:{principal.kind}:{principal.id}"


def canonical(value: Any) -> Any:
    """Integral floats become ints (`temperature: 1` and `1.0` mean the same). Only the
    top-level parameters are folded (nested values are kept exactly as sent): a spelling
    left unfolded can only cost a miss, never a wrong hit, and this runs on every request."""
    if type(value) is float and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def request_params(payload: dict[str, Any], drop: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The output-affecting part of a request: all fields but the ignored ones; a top-level
    `null` means "the default", the same as leaving the field out."""
    return {
        k: canonical(v)
        for k, v in payload.items()
        if v is not None and k not in IGNORED_FIELDS and k not in drop
    }


def digest_of(*parts: Any) -> str:
    encoded = orjson.dumps(list(parts), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(encoded).hexdigest()


def cache_key(namespace: str, model: str, endpoint: str, payload: dict[str, Any]) -> CacheKey:
    """The exact-match key of one request."""
    digest = digest_of("exact/v1", namespace, model, endpoint, request_params(payload))
    return CacheKey(namespace, model, endpoint, digest)


__all__ = [
    "GLOBAL",
    "IGNORED_FIELDS",
    "CacheKey",
    "cache_key",
    "canonical",
    "digest_of",
    "namespace_for",
    "request_params",
    "short_digest",
]
