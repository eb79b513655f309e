"""RateLimitMiddleware: requests, tokens, concurrency and budgets, before and after the call.

Sits after Auth (it counts the principal Auth found; with no auth, the client address) and
before Cache and Router. One request goes:
1. admission, one atomic check-and-take in the store: a request slot in every request
   window, a reservation of estimated prompt tokens + `max_tokens` (or the configured
   default) in every token window, a concurrency lease, and a budget check;
2. the inner app;
3. settlement in a `finally` (so also on errors, cut streams and client disconnects): token
   reservations rewritten to what was really used (or delivered), leases released, the real
   cost charged to the budgets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from asgi_llm.accounting import charged_usage, request_cost
from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager
from asgi_llm.context import LLMContext, RateLimitInfo
from asgi_llm.errors import InvalidRequest, RateLimited
from asgi_llm.exchange import LLMLayer, RequestIds
from asgi_llm.health import HealthRegistry
from asgi_llm.ratelimit.budgets import MICROS, budget_key, counter_key, period_bounds, to_micros
from asgi_llm.ratelimit.identity import client_address
from asgi_llm.ratelimit.limiter import Limiter, Outcome
from asgi_llm.ratelimit.memory import MemoryStore
from asgi_llm.ratelimit.rules import Checks, Plan, build_checks, compile_plan
from asgi_llm.ratelimit.store import Admission, Decision, Settlement
from asgi_llm.types import ASGIApp, Receive, Scope, Send

LIMITED_ENDPOINTS = frozenset({"chat", "completions", "embeddings"})
_PROMPT_FIELD = {"chat": "messages", "completions": "prompt", "embeddings": "input"}
_HEADER_NAMES = {
    kind: tuple(f"x-ratelimit-{what}-{kind}".encode() for what in ("limit", "remaining", "reset"))
    for kind in ("requests", "tokens")
}


def format_reset(ms: int) -> str:
    """OpenAI's duration style for `x-ratelimit-reset-*`: `250ms`, `1.5s`, `6m0s`, `1h2m3s`."""
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    seconds = ms / 1000
    hours, rest = divmod(int(seconds), 3600)
    minutes = rest // 60
    secs = seconds - hours * 3600 - minutes * 60
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if minutes or hours:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return text


def explicit_completion_cap(ctx: LLMContext) -> int | None:
    """The completion cap the client wrote (`max_completion_tokens`, else `max_tokens`)."""
    payload = ctx.payload
    cap = payload.get("max_completion_tokens") or payload.get("max_tokens")
    return int(cap) if cap else None


def completion_reserve(ctx: LLMContext, default: int) -> int:
    """Completion tokens to reserve: the request's own cap, else the configured default."""
    if ctx.endpoint == "embeddings":
        return 0
    payload = ctx.payload
    cap = explicit_completion_cap(ctx) or default
    n = payload.get("n")
    return int(cap) * (n if type(n) is int and n > 1 else 1)


def _shrink_to_room(
    admission: Admission, decision: Decision, clipped: list[int], floor: int
) -> Admission | None:
    """The admission again, each implicit token reservation cut to the room its window had
    when it was refused (never below the prompt). None when nothing would change: an implicit
    `default_max_tokens` must not keep a request waiting while the window still has room
    for its prompt; the real usage is settled afterwards either way."""
    windows = list(admission.windows)
    changed = False
    for index in clipped:
        room = decision.states[index].remaining
        if floor <= room < windows[index].cost:
            windows[index] = replace(windows[index], cost=room)
            changed = True
    return replace(admission, windows=windows) if changed else None


class RateLimitMiddleware(LLMLayer):
    """Rate limits, token limits, concurrency and USD budgets (`limits:` config section)."""

    kind = "ratelimit"
    must_be_inside = ("auth",)  # it counts the principal Auth finds

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: Config | ConfigManager,
        clock: Callable[[], float] = time.time,
        health: HealthRegistry | None = None,
    ) -> None:
        super().__init__(app, config=config)
        (health if health is not None else HealthRegistry()).register("ratelimit", self._health)
        self._clock = clock
        self._ids = RequestIds()  # one admission's id: its concurrency slots and reservations
        self._limiters: dict[tuple[str, str, float], Limiter] = {}
        plan = self._plan(self.configs.current)  # a bad section fails here, with its name
        if plan is not None:
            self._limiter(plan)  # as does a storage this install cannot reach

    # -- lifespan ------------------------------------------------------------------------
    async def startup(self) -> None:
        plan = self._plan(self.configs.current)
        if plan is not None:
            await self._limiter(plan).warm_up()

    async def shutdown(self) -> None:
        limiters, self._limiters = list(self._limiters.values()), {}
        for limiter in limiters:
            await limiter.aclose()

    # -- per snapshot --------------------------------------------------------------------
    @staticmethod
    def _plan(config: Config) -> Plan | None:
        return config.derive("ratelimit.plan", compile_plan)

    def _limiter(self, plan: Plan) -> Limiter:
        key = (plan.storage, plan.prefix, plan.timeout_s)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = Limiter(plan.storage, prefix=plan.prefix, timeout_s=plan.timeout_s, clock=self._clock)
            self._limiters[key] = limiter
        return limiter

    # -- the request ---------------------------------------------------------------------
    async def handle(self, ctx: LLMContext, scope: Scope, receive: Receive, send: Send) -> None:
        plan = self._plan(ctx.config)
        if plan is None or ctx.endpoint not in LIMITED_ENDPOINTS:
            await self.app(scope, receive, send)
            return
        entry = ctx.requested
        names = (entry.name, *entry.aliases) if entry is not None else ()
        prompt = ctx.prompt_tokens_estimate
        reserve = prompt + completion_reserve(ctx, plan.default_max_tokens)
        principal = ctx.principal
        # The address counts only for `per: ip` rules and for callers without a principal:
        # parsing it (and walking X-Forwarded-For) is skipped otherwise.
        counted = principal is None or plan.counts_addresses
        address = client_address(scope, plan.trusted) if counted else ""
        checks = build_checks(plan, self._ids.new(), principal, address, names, reserve, self._clock())
        admission = checks.admission
        if not (admission.windows or admission.slots or admission.budgets):
            await self.app(scope, receive, send)
            return
        implicit = explicit_completion_cap(ctx) is None
        clipped: list[int] = []  # token windows whose implicit reservation may shrink
        for index, (window, rate) in enumerate(zip(admission.windows, checks.rates, strict=True)):
            if window.kind != "tokens" or window.cost <= window.limit:
                if implicit and window.kind == "tokens" and window.cost > prompt:
                    clipped.append(index)
                continue
            if implicit and prompt <= window.limit:
                # The reservation came from `default_max_tokens`, not from the client: it must
                # never turn into "can never fit". Hold what the window can, settle to real usage.
                admission.windows[index] = replace(window, cost=window.limit)
                clipped.append(index)
                continue
            # It would wait for ever: say so once (THREATS L4).
            if implicit:
                raise InvalidRequest(
                    f"This request's prompt alone is about {prompt} tokens, more than the limit "
                    f"of {rate.text}; shorten the prompt.",
                    param=_PROMPT_FIELD.get(ctx.endpoint, "messages"),
                    code="request_exceeds_limit",
                )
            raise InvalidRequest(
                f"This request may use up to {window.cost} tokens, more than the limit of "
                f"{rate.text}; lower max_tokens or shorten the prompt.",
                param="max_tokens",
                code="request_exceeds_limit",
            )
        limiter = self._limiter(plan)
        info = ctx.ratelimit = RateLimitInfo(reserved_tokens=reserve)
        outcome = await limiter.admit(admission, plan)
        if not outcome.decision.allowed and outcome.decision.reason == "window" and clipped:
            shrunk = _shrink_to_room(admission, outcome.decision, clipped, max(prompt, 1))
            if shrunk is not None:  # one more try, holding only the room the windows have
                outcome = await limiter.admit(shrunk, plan)
        info.degraded = outcome.degraded
        info.store = "local" if outcome.degraded else ("redis" if limiter.shared else "memory")
        self._queue_headers(ctx, outcome)
        if not outcome.decision.allowed:
            info.rejected = outcome.decision.reason
            raise self._rejection(outcome, checks)
        try:
            await self.app(scope, receive, send)
        finally:
            settlement = self._settlement(ctx, outcome, info)
            if settlement:
                if isinstance(outcome.store, MemoryStore):
                    outcome.store.settle_now(settlement, plan.strategy)  # no await: atomic
                else:
                    # Shielded: a second cancellation must not lose a lease or a charge.
                    await asyncio.shield(limiter.settle(outcome, settlement, plan))

    def _queue_headers(self, ctx: LLMContext, outcome: Outcome) -> None:
        # Per kind, the window with the least room left: (remaining, limit, reset).
        picks: dict[str, tuple[int, int, int]] = {}
        for window, state in zip(outcome.admission.windows, outcome.decision.states, strict=True):
            pick = picks.get(window.kind)
            if pick is None or state.remaining < pick[0]:
                picks[window.kind] = (state.remaining, window.limit, state.reset_ms)
        for kind, names in _HEADER_NAMES.items():  # requests, then tokens
            pick = picks.get(kind)
            if pick is not None:
                remaining, limit, reset = pick
                ctx.add_header(names[0], b"%d" % limit)
                ctx.add_header(names[1], b"%d" % remaining)
                ctx.add_header(names[2], format_reset(reset).encode())

    def _rejection(self, outcome: Outcome, checks: Checks) -> RateLimited:
        decision: Decision = outcome.decision
        retry_after = max(1.0, decision.retry_ms / 1000)
        if decision.reason == "budget":
            return RateLimited(
                "You have used up your spend budget for this period.",
                retry_after=retry_after,
                code="insufficient_quota",
            )
        if decision.reason == "concurrency":
            return RateLimited(
                "Too many requests in flight; wait for one to finish.", retry_after=retry_after
            )
        window = outcome.admission.windows[decision.failed]
        rate = checks.rates[decision.failed]
        scope = " (local limit while the shared limiter is unavailable)" if outcome.degraded else ""
        return RateLimited(
            f"Rate limit reached for {window.kind}: {rate.text}{scope}. "
            f"Retry after {int(retry_after + 0.999)}s.",
            retry_after=retry_after,
        )

    def _settlement(self, ctx: LLMContext, outcome: Outcome, info: RateLimitInfo) -> Settlement:
        admission = outcome.admission
        settlement = Settlement(admission.id, outcome.decision.now_ms)
        settlement.slots = list(admission.slots)
        # Token windows settle on the whole total, prompt-cache reads and writes included.
        usage = charged_usage(ctx)
        actual = usage.total_tokens if usage is not None else 0
        info.charged_tokens = actual
        for window in admission.windows:
            if window.kind == "tokens" and actual != window.cost:
                settlement.windows.append((window, actual))
        if admission.budgets:
            usd = request_cost(ctx)
            info.charged_usd = usd
            micros = to_micros(usd)
            settlement.budgets = [(hold, micros) for hold in admission.budgets if micros > 0]
        return settlement

    # -- for the metrics and admin layers -------------------------------------------------
    def _health(self) -> bool | None:
        """The shared store is down and the local fallback serves (None: no limits)."""
        plan = self._plan(self.configs.current)
        return None if plan is None else self._limiter(plan).degraded

    def stats(self) -> dict[str, Any]:
        """Gauges and counters of the limiter in force (the `ratelimit_degraded` metric)."""
        plan = self._plan(self.configs.current)
        if plan is None:
            return {"enabled": False}
        limiter = self._limiter(plan)
        return {
            "enabled": True,
            "shared": limiter.shared,
            "degraded": limiter.degraded,
            "degraded_admissions": limiter.degraded_admissions,
            "store_failures": limiter.store_failures,
        }

    async def tenant_spend(self, period: str) -> dict[str, float] | None:
        """USD each tenant has spent in the current `period` (day, week, month), as its budget
        counters say (every team's and per-tenant budget's); None without limits. Raises
        ServiceUnavailable when the shared store does not answer."""
        plan = self._plan(self.configs.current)
        if plan is None:
            return None
        label, _ = period_bounds(period, self._clock())
        spend = await self._limiter(plan).budget_spend(counter_key(plan.prefix, "tenant", period, label))
        return {who: micros / MICROS for who, micros in spend.items()}

    async def usage_report(self) -> dict[str, Any]:
        """Spend and what remains per key/tenant in the current period of every budget.

        Raises ServiceUnavailable (503) when the shared store does not answer: spend figures
        are never guessed.
        """
        plan = self._plan(self.configs.current)
        if plan is None or not plan.budgets:
            return {"budgets": []}
        limiter = self._limiter(plan)
        now = self._clock()
        report = []
        for budget in plan.budgets:
            label, ends_ms = period_bounds(budget.period, now)
            spend = await limiter.budget_spend(budget_key(plan.prefix, budget, label))
            limit = to_micros(budget.usd)
            usage = [
                {"id": who, "spent_usd": micros / MICROS, "remaining_usd": max(0, limit - micros) / MICROS}
                for who, micros in sorted(spend.items())
            ]
            report.append(
                {
                    "per": budget.per,
                    "usd": budget.usd,
                    "period": budget.period,
                    "period_label": label,
                    "resets_at": datetime.fromtimestamp(ends_ms / 1000, UTC).isoformat(),
                    "usage": usage,
                }
            )
        return {"budgets": report}


__all__ = ["RateLimitMiddleware", "completion_reserve", "format_reset"]
