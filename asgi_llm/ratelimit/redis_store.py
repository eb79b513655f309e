"""RedisStore: the fleet's counter store.

The client comes from `asgi_llm.redis_client` (one Redis, TLS, a unix socket, a Redis Cluster
or a Sentinel-managed primary: the URI grammar `limits` uses for its storages); the counting
is our own two scripts (`scripts.py`), one round trip per admission and one per settlement.
Every key of a call carries the route key's hash tag, so on a cluster each script runs on
the one node owning that slot, and a failover moves all of a fleet's counters together.

Every call has a deadline (socket timeouts plus an asyncio one): a Redis that is down,
blackholed, slow or failing over costs a request at most `timeout_s`, then `StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from asgi_llm.errors import ConfigError
from asgi_llm.ratelimit.scripts import ADMIT, SETTLE
from asgi_llm.ratelimit.store import (
    Admission,
    Decision,
    Settlement,
    StoreUnavailable,
    Strategy,
    WindowState,
)
from asgi_llm.redis_client import connect, errors

_REASONS = {0: None, 1: "window", 2: "concurrency", 3: "budget"}
# Connections per process (per node on a cluster). The pool waits for a free one (up to the
# call's deadline) instead of failing: redis-py's default pool raises under a burst.
MAX_CONNECTIONS = 64


class RedisStore:
    def __init__(self, uri: str, *, route_key: str, timeout_s: float) -> None:
        self.uri = uri
        self.timeout_s = timeout_s
        self._route_key = route_key  # carries the prefix's hash tag: picks the cluster node
        self._client: Any = None
        self._admit: Any = None
        self._settle: Any = None
        self.round_trips = 0  # script calls made (the benchmark reads it)
        self._failures: tuple[type[BaseException], ...] = (OSError, TimeoutError)

    def _connect(self) -> None:
        try:
            client = connect(self.uri, timeout=self.timeout_s, max_connections=MAX_CONNECTIONS)
        except RuntimeError:
            raise ConfigError(
                "a redis:// storage needs the redis client: pip install 'asgi-llm[redis]'",
                field="limits.storage",
            ) from None
        self._failures = errors()
        self._client = client
        self._admit = client.register_script(ADMIT)
        self._settle = client.register_script(SETTLE)

    async def _call(self, script_name: str, args: list[Any]) -> Any:
        if self._client is None:
            self._connect()
        script = self._admit if script_name == "admit" else self._settle
        self.round_trips += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                return await script(keys=[self._route_key], args=args)
        except self._failures as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from None

    async def ping(self) -> None:
        if self._client is None:
            self._connect()
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._client.ping()
        except self._failures as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from None

    async def admit(self, admission: Admission, strategy: Strategy) -> Decision:
        args: list[Any] = [strategy, admission.id, len(admission.windows)]
        for w in admission.windows:
            args += [w.key, w.limit, w.expiry_ms, w.cost]
        args.append(len(admission.slots))
        for s in admission.slots:
            args += [s.key, s.limit, s.lease_ms]
        args.append(len(admission.budgets))
        for b in admission.budgets:
            args += [b.key, b.member, b.limit_micros, b.ends_at_ms]
        raw = await self._call("admit", args)
        values = [int(v) for v in raw]
        states = [WindowState(values[i], values[i + 1]) for i in range(5, len(values), 2)]
        return Decision(
            bool(values[0]),
            values[1],
            states,
            _REASONS[values[2]],  # type: ignore[arg-type]
            values[3],
            values[4],
        )

    async def settle(self, settlement: Settlement, strategy: Strategy) -> None:
        args: list[Any] = [strategy, settlement.id, settlement.at_ms, len(settlement.windows)]
        for w, actual in settlement.windows:
            args += [w.key, w.expiry_ms, w.cost, actual]
        args.append(len(settlement.slots))
        args += [s.key for s in settlement.slots]
        args.append(len(settlement.budgets))
        for b, micros in settlement.budgets:
            args += [b.key, b.member, micros, b.ends_at_ms]
        await self._call("settle", args)

    async def budget_spend(self, key: str) -> dict[str, int]:
        if self._client is None:
            self._connect()
        try:
            async with asyncio.timeout(self.timeout_s):
                raw = await self._client.hgetall(key)
        except self._failures as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from None
        return {_text(k): int(v) for k, v in raw.items()}

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except self._failures:
                pass


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


__all__ = ["RedisStore"]
