"""Stored responses in Redis, shared by every replica and worker of a fleet.

Layout: one string per record, `<prefix>:r:{<namespace digest>}:<id>`, holding the record's
JSON, with a `PX` lifetime. No client text reaches a key unchecked: the namespace is hashed
and the id must match `[A-Za-z0-9_-]{1,128}` first, so no key ever carries `{`, `}`, `*` or
`:` from a client. The single hash tag is the namespace digest: on a Redis Cluster one
tenant's records share a slot (room for per-tenant multi-key commands later) while tenants
spread over the nodes, which a tag around the whole prefix would not allow.

Every command runs under `timeout_s` (socket timeouts are set too), and a Redis that failed
is left alone for a pause (Breaker): a dead or blackholed Redis costs at most one timeout
per pause, and every call meanwhile raises ResponseStoreUnavailable at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from asgi_llm.breaker import Breaker
from asgi_llm.redact import redact_url_passwords
from asgi_llm.redis_client import connect, errors
from asgi_llm.response_store.base import (
    ResponseStoreUnavailable,
    StoredResponse,
    check_record,
    valid_id,
)

log = logging.getLogger("asgi_llm.response_store")

PREFIX = re.compile(r"[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-]+)*")  # no braces: ours is the one tag


def namespace_digest(namespace: str) -> str:
    """A fixed-alphabet stand-in for a namespace in keys (128 bits: collisions are not a
    concern, and `get` checks the record's own namespace besides)."""
    return hashlib.sha256(namespace.encode()).hexdigest()[:32]


def record_key(prefix: str, namespace: str, response_id: str) -> str:
    return f"{prefix}:r:{{{namespace_digest(namespace)}}}:{response_id}"


class RedisResponseStore:
    """The fleet's store: every replica and worker sees what any of them stored."""

    def __init__(self, url: str, *, prefix: str, timeout_s: float) -> None:
        if PREFIX.fullmatch(prefix) is None:
            raise ValueError(f"invalid key prefix {prefix!r} (letters, digits, _ . - and :)")
        if not timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        self.prefix = prefix
        self._timeout = timeout_s
        self._client = connect(url, timeout=timeout_s)  # lazy: nothing is sent before a call
        self._errors = errors()
        self._outage = Breaker(single_probe=True, on_down=_log_down, on_up=_log_up)

    @property
    def degraded(self) -> bool:
        """Redis failed the last time it was asked (for /readyz and the metrics)."""
        return self._outage.down

    async def put(self, record: StoredResponse, ttl_s: float) -> None:
        check_record(record, ttl_s)
        key = record_key(self.prefix, record.namespace, record.id)
        raw, ttl_ms = record.to_json(), max(1, round(ttl_s * 1000))
        await self._call(lambda client: client.set(key, raw, px=ttl_ms))

    async def get(self, namespace: str, response_id: str) -> StoredResponse | None:
        if not valid_id(response_id):
            return None
        key = record_key(self.prefix, namespace, response_id)
        raw = await self._call(lambda client: client.get(key))
        if raw is None:
            return None
        try:
            record = StoredResponse.from_json(raw)
        except ValueError as exc:
            # Written by something else (an older release, a hand edit): not ours to serve.
            log.warning("stored response %s unreadable (%s); treated as missing", response_id, exc)
            return None
        if (record.namespace, record.id) != (namespace, response_id):
            return None
        return record

    async def delete(self, namespace: str, response_id: str) -> bool:
        if not valid_id(response_id):
            return False
        key = record_key(self.prefix, namespace, response_id)
        return bool(await self._call(lambda client: client.delete(key)))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, command: Callable[[Any], Awaitable[Any]]) -> Any:
        if not self._outage.allows():
            raise ResponseStoreUnavailable("Redis failed moments ago; not asked again yet")
        try:
            async with asyncio.timeout(self._timeout):
                answer = await command(self._client)
        except self._errors as exc:
            self._outage.failed(exc)
            reason = redact_url_passwords(f"{type(exc).__name__}: {exc}")
            raise ResponseStoreUnavailable(reason) from None
        self._outage.succeeded()
        return answer


def _log_down(exc: BaseException) -> None:
    log.warning(
        "response store unavailable (%s): storing and reading responses answer 503 until it is back",
        exc.__class__.__name__,
    )


def _log_up(seconds: float) -> None:
    log.info("response store available again after %.1f s", seconds)


__all__ = ["RedisResponseStore", "namespace_digest", "record_key"]
