"""CacheMiddleware: exact (and, when configured, semantic) answers for LLM requests.

Sits outside the router in the default order (Metrics, Auth, RateLimit, Cache, Router), so
a hit costs no upstream call, no routing and no token budget. It resolves the model itself.
The cache fails open: a backend in trouble means a bypass with a counter, never an error.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import orjson

from asgi_llm.breaker import Breaker
from asgi_llm.cache.entry import BadEntry, Entry, decode_entry, new_entry
from asgi_llm.cache.flight import SingleFlight
from asgi_llm.cache.judge import Judge
from asgi_llm.cache.keys import GLOBAL, CacheKey, cache_key, namespace_for, short_digest
from asgi_llm.cache.policy import Directives, deterministic_enough, read_directives
from asgi_llm.cache.recorder import Recorder
from asgi_llm.cache.replay import finish_reasons, sse_events
from asgi_llm.cache.store import CacheStore, FlightLock, open_store
from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager
from asgi_llm.context import LLMContext, Usage
from asgi_llm.exchange import LLMLayer
from asgi_llm.health import HealthRegistry
from asgi_llm.request import INFERENCE
from asgi_llm.responses import send_json, start_event_stream
from asgi_llm.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from asgi_llm.cache.semantic import SemanticTier
    from asgi_llm.config.schema import Cache

log = logging.getLogger("asgi_llm.cache")

BACKOFF_S = 1.0  # after a backend error, bypass without trying for this long
BACKEND_DOWN = "backend_unavailable"


@dataclass
class CacheStats:
    """Counters for the metrics layer (`CacheMiddleware.stats`). `backend_errors` is the
    fail-open metric: each one is a request that bypassed a backend in trouble."""

    hits: dict[str, int] = field(default_factory=lambda: {"exact": 0, "semantic": 0})
    misses: int = 0
    bypasses: int = 0
    stored: int = 0
    backend_errors: int = 0
    bad_entries: int = 0
    flight_followers: int = 0


class CacheMiddleware(LLMLayer):
    """Exact cache over a `CacheStore`; semantic tier when `cache.semantic.enabled`.

    `store` and `semantic` may be injected (tests, custom backends); by default they are
    built from the `cache:` section and opened on lifespan startup (or on first use).
    """

    kind = "cache"

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: Config | ConfigManager,
        store: CacheStore | None = None,
        semantic: SemanticTier | None = None,
        health: HealthRegistry | None = None,
    ) -> None:
        super().__init__(app, config=config)
        (health if health is not None else HealthRegistry()).register("cache", self._health)
        self.stats = CacheStats()
        self._injected = store
        self._stores: dict[tuple[Any, ...], CacheStore] = {}
        self._semantic = semantic
        self._judge = Judge(app)  # used only when cache.semantic.judge names a model
        self._flights = SingleFlight()
        self._breaker = Breaker(pause_s=BACKOFF_S, on_down=_log_down, on_up=_log_up)

    def order_requirements(self) -> dict[str, str]:
        """Outside Auth there is no caller yet: a per-tenant or per-key namespace would
        silently become one namespace shared by all. Only a declared public cache may sit there."""
        settings = self.configs.current.cache
        if settings is None or settings.namespace_by == GLOBAL:
            return {}
        return {
            "auth": f"the caller that names the cache namespace (namespace_by: "
            f"{settings.namespace_by}); a public cache outside it needs "
            f"namespace_by: global"
        }

    # -- lifespan ------------------------------------------------------------------

    def _health(self) -> bool | None:
        return None if self.configs.current.cache is None else self.degraded

    @property
    def degraded(self) -> bool:
        """The backend failed and has not answered since: lookups are bypassed (for metrics)."""
        return self._breaker.down

    async def startup(self) -> None:
        settings = self.configs.current.cache
        if settings is None:
            return
        store = self._store_for(settings)
        if self._semantic is None and settings.semantic.enabled:
            try:
                from asgi_llm.cache.semantic import build_semantic_tier

                self._semantic = await build_semantic_tier(settings, store)
            except Exception:  # noqa: BLE001 - the cache fails open, the exact tier still works
                log.exception(
                    "semantic cache disabled: the embedding model could not be loaded "
                    "(is the `semantic` extra installed?)"
                )
        if self._semantic is not None:
            await self._semantic.start()

    async def shutdown(self) -> None:
        if self._semantic is not None:
            await self._semantic.stop()
        stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            await store.aclose()

    def _store_for(self, settings: Cache) -> CacheStore:
        """The store of the settings in force: injected, or opened on first use (also
        without lifespan), and again when a reload names another backend."""
        if self._injected is not None:
            return self._injected
        ident = (settings.backend, settings.max_entries, settings.max_bytes, settings.timeout_s)
        store = self._stores.get(ident)
        if store is None:
            store = self._stores[ident] = open_store(
                settings.backend,
                max_entries=settings.max_entries,
                max_bytes=settings.max_bytes,
                timeout_s=settings.timeout_s,
            )
        return store

    @property
    def store(self) -> CacheStore:
        settings = self.configs.current.cache
        if settings is None:
            raise RuntimeError("no cache section in the config in force")
        return self._store_for(settings)

    @property
    def semantic(self) -> SemanticTier | None:
        return self._semantic

    @property
    def judge(self) -> Judge:
        """The semantic tier's judge (asked only with `cache.semantic.judge`): its counters."""
        return self._judge

    # -- the request path ------------------------------------------------------------
    async def handle(self, ctx: LLMContext, scope: Scope, receive: Receive, send: Send) -> None:
        settings = ctx.config.cache
        if settings is None or ctx.endpoint not in INFERENCE:
            await self.app(scope, receive, send)
            return
        entry = ctx.requested
        if entry is None:  # unknown model: the router (or ProviderApp) answers the 404
            await self.app(scope, receive, send)
            return
        directives = read_directives(scope, settings)
        reason = (
            "no-store"
            if not (directives.lookup or directives.store)
            # A /v1/messages request with fields its chat form leaves out (documents, server
            # tools, ...): a key made of that form would match other requests' answers.
            else "native_only"
            if ctx.messages is not None and ctx.messages.refused is not None
            else "temperature"
            if not deterministic_enough(ctx.payload, ctx.endpoint, settings)
            else BACKEND_DOWN
            if not self._breaker.allows()
            else None
        )
        if reason is not None:
            await self._bypass(ctx, scope, receive, send, reason)
            return
        store = self._store_for(settings)
        key = cache_key(
            namespace_for(ctx.principal, settings.namespace_by), entry.name, ctx.endpoint, ctx.payload
        )
        where = key.storage_key(settings.key_prefix)
        call = _Call(ctx, settings, store, key, where, directives)
        try:
            if directives.lookup and await self._try_hit(call, send):
                return
        except _BackendDown:
            await self._bypass(ctx, scope, receive, send, BACKEND_DOWN)
            return
        if not (directives.store and directives.lookup and settings.single_flight):
            await self._forward(call, scope, receive, send)
            return
        lock = cast("FlightLock", store) if _is_flight_lock(type(store)) else None
        async with self._flights.lead_or_follow(
            where,
            settings.flight_wait_s,
            lock,
            f"{settings.key_prefix}:l:{key.digest}",
            ready=lambda: self._peek(store, where, key),
        ) as leader:
            if not leader:
                self.stats.flight_followers += 1
                found = await self._peek(store, where, key)
                if found is not None:
                    await self._serve(ctx, found, "exact", None, send)
                    return
            await self._forward(call, scope, receive, send)

    async def _try_hit(self, call: _Call, send: Send) -> bool:
        found = await self._get(call.store, call.where, call.key)
        if found is not None:
            await self._serve(call.ctx, found, "exact", None, send)
            return True
        semantic = self._semantic
        if semantic is None or not call.settings.semantic.enabled:
            return False
        decision = await semantic.lookup(call.ctx, call.key, call.directives.threshold, self._judge)
        if decision is None:
            return False
        call.ctx.cache_stage = decision.stage
        call.judge_cost_usd = decision.cost_usd
        if decision.key is None:
            return False
        found = await self._get(call.store, decision.where, decision.key)
        if found is None:
            return False
        call.ctx.add_header(b"x-cache-stage", decision.stage.encode())
        await self._serve(call.ctx, found, "semantic", decision.similarity, send)
        if decision.cost_usd:
            call.ctx.cost_usd = decision.cost_usd  # the judge's call: the hit's only cost
        return True

    async def _get(self, store: CacheStore, where: str, key: CacheKey) -> Entry | None:
        try:
            raw = await store.get(where)
        except Exception as exc:  # noqa: BLE001 - fail open, whatever the backend raised
            self._backend_failed(exc)
            raise _BackendDown from None
        self._breaker.succeeded()
        if raw is None:
            return None
        try:
            return decode_entry(raw, key.digest, key.endpoint)
        except BadEntry as exc:
            self.stats.bad_entries += 1
            log.warning("cache entry ignored (%s)", exc)
            return None

    async def _peek(self, store: CacheStore, where: str, key: CacheKey) -> Entry | None:
        try:
            return await self._get(store, where, key)
        except _BackendDown:
            return None

    async def _serve(
        self, ctx: LLMContext, entry: Entry, kind: str, similarity: float | None, send: Send
    ) -> None:
        self.stats.hits[kind] += 1
        ctx.cache_status, ctx.cache_kind = "hit", kind
        if similarity is not None:
            ctx.add_header(b"x-cache-similarity", f"{similarity:.4f}".encode())
        # A hit costs nothing upstream: budgets and token limits must not charge it, so the
        # stored usage goes aside and ctx.usage stays None.
        usage = entry.usage
        if usage is not None:
            ctx.cached_usage = Usage(
                int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            )
        ctx.cost_usd = 0.0
        reasons = finish_reasons(entry.response)
        ctx.finish_reason = reasons[0] if reasons else None
        if ctx.stream:
            body = sse_events(entry.endpoint, entry.response, ctx.include_usage)
            await start_event_stream(send)
            await send({"type": "http.response.body", "body": body})
        else:
            await send_json(send, 200, orjson.dumps(entry.response))

    async def _forward(self, call: _Call, scope: Scope, receive: Receive, send: Send) -> None:
        """A miss: call inward, copy the answer aside while it passes, store it if whole."""
        ctx = call.ctx
        self.stats.misses += 1
        ctx.cache_status = "miss"
        if not call.directives.store:
            await self.app(scope, receive, send)
            self._charge_judge(call)
            return
        recorder = Recorder(ctx, call.settings.max_entry_bytes)
        await self.app(scope, receive, recorder.wrap(send))
        self._charge_judge(call)
        response = recorder.result()
        if response is None:
            return
        entry = new_entry(call.key.digest, call.key.endpoint, response)
        try:
            await call.store.set(call.where, entry.encode(), call.directives.ttl_s)
        except Exception as exc:  # noqa: BLE001 - the answer went out; only the copy is lost
            self._backend_failed(exc)
            return
        self.stats.stored += 1
        if self._semantic is not None and call.settings.semantic.enabled:
            try:
                await self._semantic.add(ctx, call.key, call.where, call.directives.ttl_s)
            except Exception as exc:  # noqa: BLE001 - an index entry lost is a future miss
                log.warning("semantic index add failed: %s", exc.__class__.__name__)

    @staticmethod
    def _charge_judge(call: _Call) -> None:
        """A judge said no on the way to this miss: its call is part of the request's cost."""
        if call.judge_cost_usd:
            call.ctx.cost_usd = (call.ctx.cost_usd or 0.0) + call.judge_cost_usd

    async def _bypass(self, ctx: LLMContext, scope: Scope, receive: Receive, send: Send, reason: str) -> None:
        """Not consulted; why goes to `ctx.cache_bypass` for the metrics layer
        (`backend_unavailable` is the fail-open case: Redis down or too slow)."""
        self.stats.bypasses += 1
        ctx.cache_status = "bypass"
        ctx.cache_bypass = reason
        await self.app(scope, receive, send)

    def _backend_failed(self, exc: BaseException) -> None:
        self.stats.backend_errors += 1
        self._breaker.failed(exc)

    # -- administration ---------------------------------------------------------------
    async def purge(self, *, namespace: str | None = None, model: str | None = None) -> int:
        """Delete entries of one namespace, one model, both, or all; returns how many.

        `namespace` is a namespace as the cache names it (`global`, `tenant:<t>`,
        `key:<kind>:<id>`) or a bare tenant name. `model` may be an alias.
        """
        config = self.configs.current
        settings = config.cache
        if settings is None:
            return 0
        ns = _namespace_name(namespace) if namespace is not None else None
        name = model
        if model is not None:
            resolved = config.catalog.resolve(model)
            name = resolved.name if resolved is not None else model
        pattern = (
            f"{settings.key_prefix}:e:{short_digest(ns) if ns is not None else '*'}:"
            f"{short_digest(name) if name is not None else '*'}:*"
        )
        deleted = await self._store_for(settings).purge(pattern)
        if self._semantic is not None:
            await self._semantic.purge(ns, name)
        return deleted


@dataclass(slots=True)
class _Call:
    """What one request's trip through the cache needs (never kept on the middleware)."""

    ctx: LLMContext
    settings: Cache
    store: CacheStore
    key: CacheKey
    where: str
    directives: Directives
    judge_cost_usd: float = 0.0  # a semantic judge asked on the way: added to the request's cost


@functools.cache
def _is_flight_lock(store_type: type) -> bool:
    """isinstance against a runtime Protocol walks its members on every call (a few percent
    of a request in profiles): decided once per store class."""
    return issubclass(store_type, FlightLock)


def _namespace_name(namespace: str) -> str:
    if namespace == GLOBAL or namespace.startswith(("tenant:", "key:")):
        return namespace
    return f"tenant:{namespace}"


class _BackendDown(Exception):
    pass


def _log_down(exc: BaseException) -> None:
    log.warning(
        "cache backend unavailable (%s): bypassing, tried again every %.0f s",
        exc.__class__.__name__,
        BACKOFF_S,
    )


def _log_up(seconds: float) -> None:
    log.info("cache backend available again after %.1f s", seconds)


__all__ = ["CacheMiddleware", "CacheStats"]
