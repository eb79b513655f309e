"""Limiter: the shared store, and what happens when it does not answer.

Policy (THREATS, fail-open/closed table): rate limits degrade to a per-replica local limiter
(each limit divided by `replicas`) with a log line on the way down and on the way back;
`strict: true` answers 503 instead; budgets fail closed (503) because a wrong allow costs
money. After a failure the shared store is left alone for `RETRY_S`, so a dead Redis costs
one timeout per replica per interval, not one per request; the next call after it tries
again, and recovery needs no restart.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from asgi_llm.breaker import Breaker
from asgi_llm.errors import ConfigError, ServiceUnavailable
from asgi_llm.ratelimit.memory import MemoryStore
from asgi_llm.ratelimit.redis_store import RedisStore
from asgi_llm.ratelimit.rules import Plan, scaled_for_one_replica
from asgi_llm.ratelimit.store import (
    Admission,
    CounterStore,
    Decision,
    Settlement,
    StoreUnavailable,
)

log = logging.getLogger("asgi_llm.ratelimit")

RETRY_S = 1.0


@dataclass(slots=True)
class Outcome:
    decision: Decision
    admission: Admission  # as admitted (scaled down when degraded): settlement follows it
    store: CounterStore
    degraded: bool


class Limiter:
    def __init__(
        self, storage: str, *, prefix: str, timeout_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.storage = storage
        self.shared = not storage.removeprefix("async+").startswith("memory")
        if self.shared and importlib.util.find_spec("redis") is None:
            raise ConfigError(
                "a Redis storage needs the redis client: pip install 'asgi-llm[redis]'",
                field="limits.storage",
            )
        self.local = MemoryStore(clock=clock)
        self.primary: CounterStore = (
            RedisStore(storage, route_key=prefix, timeout_s=timeout_s) if self.shared else self.local
        )
        self.breaker = Breaker(pause_s=RETRY_S, on_down=_log_down, on_up=_log_up, clock=clock)
        # For the metrics layer (and tests): admissions served locally.
        self.degraded_admissions = 0

    @property
    def degraded(self) -> bool:
        """The shared store failed and has not answered since: local limits decide."""
        return self.breaker.down

    @property
    def store_failures(self) -> int:
        return self.breaker.failures

    async def warm_up(self) -> None:
        """Open the connection at startup, so the first requests do not pay for it."""
        if isinstance(self.primary, RedisStore):
            try:
                await self.primary.ping()
            except StoreUnavailable as exc:
                self.breaker.failed(exc)

    async def admit(self, admission: Admission, plan: Plan) -> Outcome:
        if not self.shared or self.breaker.allows():
            try:
                decision = await self.primary.admit(admission, plan.strategy)
            except StoreUnavailable as exc:
                self.breaker.failed(exc)
            else:
                self.breaker.succeeded()
                return Outcome(decision, admission, self.primary, False)
        if plan.strict:
            raise ServiceUnavailable(
                "Rate limiting is unavailable; try again shortly.",
                retry_after=RETRY_S,
                code="ratelimit_unavailable",
            )
        if admission.budgets:
            raise ServiceUnavailable(
                "Spend budgets cannot be checked right now; try again shortly.",
                retry_after=RETRY_S,
                code="budget_unavailable",
            )
        self.degraded_admissions += 1
        local = scaled_for_one_replica(admission, plan.replicas)
        return Outcome(self.local.admit_now(local, plan.strategy), local, self.local, True)

    async def settle(self, outcome: Outcome, settlement: Settlement, plan: Plan) -> None:
        """Never raises: the response is over, a lost settlement is logged and counted."""
        try:
            await outcome.store.settle(settlement, plan.strategy)
        except StoreUnavailable as exc:
            self.breaker.failed(exc)
            log.warning(
                "rate-limit settlement lost (%d token windows, %d budgets): %s",
                len(settlement.windows),
                len(settlement.budgets),
                exc,
            )
        except Exception:
            log.exception("rate-limit settlement failed")

    async def budget_spend(self, key: str) -> dict[str, int]:
        try:
            return await self.primary.budget_spend(key)
        except StoreUnavailable as exc:
            self.breaker.failed(exc)
            raise ServiceUnavailable(
                "Spend figures are unavailable right now.", retry_after=RETRY_S, code="budget_unavailable"
            ) from None

    async def aclose(self) -> None:
        await self.primary.aclose()


def _log_down(exc: BaseException) -> None:
    log.warning(
        "rate-limit storage unavailable (%s); local per-replica limits in force until it answers", exc
    )


def _log_up(seconds: float) -> None:
    log.warning("rate-limit storage is back after %.1f s: shared limits in force again", seconds)


__all__ = ["RETRY_S", "Limiter", "Outcome"]
