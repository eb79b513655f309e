"""RouterMiddleware: resolves the model, picks and orders deployments, drives the attempts.

Sits just outside ProviderApp; each attempt is one call of the inner app with
`ctx.deployment` set. Failover happens only while no response byte has been sent: to the
next candidate (jittered backoff when coming back to one, a 429's retry-after honoured up to
`max_retry_after_s`), then along the model's fallback chain, each fallback model authorized
again for the caller. A retry budget keeps a full outage from multiplying the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

from asgi_llm.config.catalog import ModelEntry
from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager
from asgi_llm.config.schema import Deployment
from asgi_llm.context import Attempt, LLMContext
from asgi_llm.errors import (
    InvalidRequest,
    ModelNotFound,
    ProxyError,
    UpstreamError,
    UpstreamStatus,
    UpstreamTimeout,
    retry_after_header,
)
from asgi_llm.exchange import LLMLayer
from asgi_llm.request import ROUTED
from asgi_llm.routing.events import RouterEvents
from asgi_llm.routing.filters import capable
from asgi_llm.routing.fleet import FleetCooldowns
from asgi_llm.routing.health import CooldownTracker
from asgi_llm.routing.latency import LatencyTracker
from asgi_llm.routing.strategies import STRATEGIES, RoutingState
from asgi_llm.types import ASGIApp, Receive, Scope, Send

BACKOFF_BASE_S = 0.025
BACKOFF_MAX_S = 0.25
AUTH_FAILED = "upstream_auth_failed"  # the upstream refused the deployment's own credentials


def final_error(errors: list[UpstreamError], retry_after_cap: float | None = None) -> UpstreamError:
    """What the client hears when every attempt failed."""
    last = errors[-1]
    if all(isinstance(e, UpstreamTimeout) for e in errors):
        return last
    if isinstance(last, UpstreamStatus) and last.status == 429:
        return _with_retry_after(last, retry_after_cap)  # passed on with its retry-after
    return UpstreamError(
        f"All {len(errors)} upstream attempts failed (last: {last.message})",
        deployment=last.deployment,
        code=last.code if last.status == 502 else "upstream_unavailable",
    )


def _with_retry_after(error: UpstreamStatus, cap: float | None) -> UpstreamStatus:
    """A 429 passed on always says when to come back (THREATS U2): the upstream's value
    (already clamped to an hour when parsed), at most `cap` (the longest cooldown: the router
    tries the deployment again by then), and at least 1 s, also when the upstream's
    Retry-After was missing or unreadable."""
    seconds = error.retry_after if error.retry_after is not None else 1.0
    if cap is not None:
        seconds = min(seconds, cap)
    error.headers = [h for h in error.headers if h[0] != b"retry-after"]
    error.headers.append(retry_after_header(seconds))
    return error


class RouterMiddleware(LLMLayer):
    kind = "router"

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: Config | ConfigManager,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        cooldowns: CooldownTracker | None = None,
    ) -> None:
        """`cooldowns` is shared with the metrics layer's gauges when `build_app` builds the
        stack; built alone, the router keeps its own."""
        super().__init__(app, config=config)
        routing = self.configs.current.routing
        self.cooldowns = cooldowns if cooldowns is not None else CooldownTracker(clock)
        self.fleet = FleetCooldowns(
            self.cooldowns,
            settings=lambda: (
                self.configs.current.routing.redis_url,
                self.configs.current.routing.redis_prefix,
            ),
            known=lambda: set(self.configs.current.catalog.deployments),
        )
        self._fleet_task: asyncio.Task[None] | None = None
        self.latency = LatencyTracker(routing.latency.decay_s, clock)
        self.events = RouterEvents(clock=clock)
        self.rng = rng or random.Random()
        self.active = 0  # requests in the router now
        self.retrying = 0  # of those, requests past their first attempt
        self.configs.listeners.append(self._config_changed)

    def _config_changed(self, old: Config, new: Config) -> None:
        keep = set(new.catalog.deployments)
        self.cooldowns.forget(keep)
        self.latency.forget(keep)
        self.latency.decay_s = new.routing.latency.decay_s

    # -- lifespan: the fleet's shared cooldowns (routing/fleet.py) ------------------------
    async def startup(self) -> None:
        self._start_fleet()

    async def shutdown(self) -> None:
        task, self._fleet_task = self._fleet_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _start_fleet(self) -> None:
        """Runs while `routing.redis_url` is set (started on lifespan startup, or on the first
        request of an app without lifespan or after a reload that sets it)."""
        if self._fleet_task is None and self.configs.current.routing.redis_url is not None:
            self._fleet_task = asyncio.get_running_loop().create_task(self.fleet.run())

    async def handle(self, ctx: LLMContext, scope: Scope, receive: Receive, send: Send) -> None:
        if ctx.endpoint not in ROUTED:
            await self.app(scope, receive, send)
            return
        if self._fleet_task is None and ctx.config.routing.redis_url is not None:
            self._start_fleet()
        entry = ctx.requested
        if entry is None:
            raise ModelNotFound(ctx.model or "")
        plan, refusal = self._plan(ctx, entry)
        if not plan:
            raise InvalidRequest(
                f"The request cannot be served: {refusal}.",
                code="request_exceeds_limit" if "token" in (refusal or "") else "unsupported_capability",
            )
        errors: list[UpstreamError] = []
        self.active += 1
        retrying = False
        try:
            for index, (model, deployment) in enumerate(plan):
                if ctx.attempts and not retrying:
                    if not self._may_retry():
                        break
                    retrying = True
                    self.retrying += 1
                ctx.entry = model
                if model is not entry:
                    ctx.fallback_model = model.name
                tried = len(errors)
                if await self._attempt(ctx, deployment, errors, scope, receive, send):
                    return
                if len(errors) > tried:
                    step = _next_step(plan, index)
                    self.events.attempt_failed(ctx.request_id, deployment.id, ctx.attempts, errors[-1], step)
            error = (
                final_error(errors, ctx.config.routing.cooldown.max_seconds)
                if errors
                else UpstreamError("No upstream attempt could be made.", code="upstream_unavailable")
            )
            self.events.gave_up(ctx.request_id, entry.name, ctx.attempts, error)
            raise error
        finally:
            self.active -= 1
            if retrying:
                self.retrying -= 1

    def _plan(
        self, ctx: LLMContext, entry: ModelEntry
    ) -> tuple[list[tuple[ModelEntry, Deployment]], str | None]:
        """The attempts, in order: each candidate of the model, then each candidate of every
        fallback model the caller may use, then the model's candidates again; 1 + retries long."""
        catalog = ctx.config.catalog
        routing = ctx.config.routing
        fallbacks = catalog.fallbacks.get(entry.name)
        chain = [entry, *map(catalog.resolve, fallbacks)] if fallbacks else (entry,)
        groups: list[tuple[ModelEntry, list[Deployment]]] = []
        refusal: str | None = None
        for position, model in enumerate(chain):
            if model is None:
                continue
            if position and ctx.principal is not None and not ctx.principal.may_use(model):
                continue  # a fallback the caller may not use is never tried
            candidates, why = capable(model, ctx, routing.default_max_tokens)
            if candidates:
                groups.append((model, self._order(ctx, model, candidates)))
            else:
                refusal = refusal or why
        plan = [(model, d) for model, ordered in groups for d in ordered]
        if plan:
            model, ordered = groups[0]
            budget = 1 + routing.retries
            if len(plan) < budget:
                plan += [(model, ordered[i % len(ordered)]) for i in range(budget - len(plan))]
            elif len(plan) > budget:
                plan = plan[:budget]
            ctx.candidates = [d for _, d in plan]
        return plan, refusal

    def _may_retry(self) -> bool:
        routing = self.configs.current.routing
        return self.retrying < max(routing.min_retries_in_flight, routing.retry_budget * self.active)

    def _order(self, ctx: LLMContext, model: ModelEntry, candidates: list[Deployment]) -> list[Deployment]:
        """Healthy candidates in strategy order; if every one is cooling down, the one back
        soonest first (never none)."""
        healthy, cooling = self.cooldowns.split(candidates)
        routing = ctx.config.routing
        state = RoutingState(self.latency, self.rng, routing.latency.explore, routing.default_max_tokens)
        if healthy:
            return STRATEGIES[model.strategy](healthy, ctx, state)
        return self.cooldowns.soonest_back(cooling)

    async def _attempt(
        self,
        ctx: LLMContext,
        deployment: Deployment,
        errors: list[UpstreamError],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> bool:
        routing = ctx.config.routing
        previous = next((e for e in reversed(errors) if e.deployment == deployment.id), None)
        if previous is not None and previous.code == AUTH_FAILED:
            return False  # refused credentials do not mend within a request
        if previous is not None:
            # Coming back to a deployment that already failed this request: wait a little.
            delay = self.rng.uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** len(errors)))
            if previous.retry_after:
                if previous.retry_after > routing.max_retry_after_s:
                    return False
                delay = previous.retry_after
            await asyncio.sleep(delay)
        ctx.deployment = deployment
        ctx.attempts += 1
        attempt = Attempt(deployment.id, ctx.entry.name if ctx.entry is not None else "", time.perf_counter())
        ctx.attempt_log.append(attempt)
        self.latency.started(deployment.id)
        ctx.timings.upstream_start = ctx.timings.first_byte = None
        sample: float | None = None  # latency is learnt from successes and timeouts only
        try:
            await self.app(scope, receive, send)
            sample = _latency(ctx)
            attempt.status, attempt.error_code = ctx.status, ctx.stream_failure
        except ProxyError as exc:
            attempt.status, attempt.error_type, attempt.error_code = exc.status, exc.type, exc.code
            if not isinstance(exc, UpstreamError):
                raise
            if isinstance(exc, UpstreamTimeout) and ctx.timings.upstream_start is not None:
                sample = time.perf_counter() - ctx.timings.upstream_start
            if ctx.response_started or not exc.retryable:
                raise
            retry_after = exc.retry_after if isinstance(exc, UpstreamStatus) and exc.status == 429 else None
            if exc.code == AUTH_FAILED:  # the deployment's credentials: cool it down at once
                retry_after = routing.cooldown.seconds
            cooled = self.cooldowns.failure(deployment.id, routing.cooldown, retry_after)
            if cooled is not None:
                self.events.cooldown_entered(deployment.id, cooled)
                self.fleet.cooled(deployment.id, cooled)
            errors.append(exc)
            return False
        finally:
            attempt.end, attempt.first_byte = time.perf_counter(), ctx.timings.first_byte
            self.latency.finished(deployment.id, sample)
        if self.cooldowns.success(deployment.id):
            self.events.cooldown_left(deployment.id)
            self.fleet.recovered(deployment.id)
        return True


def _next_step(plan: list[tuple[ModelEntry, Deployment]], index: int) -> str:
    """What the router tries after attempt `index` failed, in words for the log."""
    if index + 1 >= len(plan):
        return "no attempts left"
    model, deployment = plan[index]
    next_model, next_deployment = plan[index + 1]
    if next_model is not model:
        return f"falling back to model {next_model.name} ({next_deployment.id})"
    if next_deployment.id == deployment.id:
        return "retrying it"
    return f"failing over to {next_deployment.id}"


def _latency(ctx: LLMContext) -> float | None:
    """Time to first token for streams, total upstream time for the rest."""
    timings = ctx.timings
    done = timings.first_byte if ctx.stream else timings.end
    if timings.upstream_start is None or done is None:
        return None
    return done - timings.upstream_start
