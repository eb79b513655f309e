"""AdminMiddleware: config view and reload, cache purge, usage, fleet keys and teams.

Placed just inside AuthMiddleware, which has already required an admin role. Every admin
action is audited before it is done; if the audit log cannot be written, it is refused.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs

import orjson

from asgi_llm.admin.deployments import DeploymentsView
from asgi_llm.admin.keys import KeyActions, check_grants
from asgi_llm.admin.teams import TeamActions
from asgi_llm.admin.usage import LedgerQueries, RawBody
from asgi_llm.auth.audit import AuditLog, AuditLogs, AuditUnavailable
from asgi_llm.auth.keys import KeyStores, RedisKeyStore
from asgi_llm.auth.middleware import AuthMiddleware
from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager
from asgi_llm.context import LLMContext, Principal
from asgi_llm.errors import InvalidRequest, PermissionDenied, ProxyError, ServiceUnavailable, error_object
from asgi_llm.exchange import LLMLayer
from asgi_llm.responses import send_json, send_response
from asgi_llm.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from asgi_llm.ledger.service import Ledger


class CachePurger(Protocol):
    """What the admin API needs of the cache (CacheMiddleware is one)."""

    async def purge(self, *, namespace: str | None = None, model: str | None = None) -> int: ...


class UsageReporter(Protocol):
    """What the admin API needs of the limiter (RateLimitMiddleware is one)."""

    async def usage_report(self) -> dict[str, Any]: ...

    async def tenant_spend(self, period: str) -> dict[str, float] | None: ...


Action = Callable[[LLMContext, Scope, Principal], Awaitable[tuple[int, Any]]]


class AdminMiddleware(LLMLayer):
    """`key_stores` and `audits` are the ones AuthMiddleware uses (`auth=` takes them from an
    AuthMiddleware); `cache` purges and `limiter` reports usage. `build_app` hands in all four."""

    kind = "admin"
    must_be_inside = ("auth", "dashboard")

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: Config | ConfigManager,
        auth: AuthMiddleware | None = None,
        cache: CachePurger | None = None,
        limiter: UsageReporter | None = None,
        key_stores: KeyStores | None = None,
        audits: AuditLogs | None = None,
        ledger: Ledger | None = None,
        deployments: DeploymentsView | None = None,
    ) -> None:
        super().__init__(app, config=config)
        self.deployments = deployments
        self.key_stores = key_stores or (auth.key_stores if auth is not None else None)
        self.audits = audits or (auth.audits if auth is not None else None)
        self.cache = cache
        self.limiter = limiter
        self.ledger = LedgerQueries(ledger)
        # Admin actions are audited even when `auth.audit_log` is not configured: to the
        # `asgi_llm.audit` logger (the configured log, when there is one, replaces it).
        self.default_audit = AuditLog(logger="asgi_llm.audit")
        self._actions: dict[str, Action] = {
            "admin.config": self._config,
            "admin.config.reload": self._config_reload,
            "admin.cache": self._cache,
            "admin.usage": self._usage,
            "admin.requests": self.ledger.requests,
            "admin.requests.get": self.ledger.request,
            "admin.stats": self._stats,
            "admin.deployments": self._deployments,
        }
        # Keys and teams at run time (admin/keys.py, admin/teams.py), in the key store.
        self._actions.update(KeyActions(self._store).actions())
        self._actions.update(TeamActions(self._store, limiter).actions())

    async def handle(self, ctx: LLMContext, scope: Scope, receive: Receive, send: Send) -> None:
        action = self._actions.get(ctx.endpoint)
        if action is None:
            await self.app(scope, receive, send)
            return
        principal = ctx.principal
        if principal is None or not principal.admin:
            raise PermissionDenied("The admin API needs an admin role.", code="endpoint_not_allowed")
        name = ctx.endpoint.removeprefix("admin.")
        self._audit(ctx, scope, principal, name, "requested")
        try:
            status, body = await action(ctx, scope, principal)
        except ProxyError:
            self._audit(ctx, scope, principal, name, "refused")
            raise
        self._audit(ctx, scope, principal, name, "done" if status < 400 else "failed")
        if isinstance(body, RawBody):  # a CSV export
            await send_response(send, status, body.body, body.content_type, body.headers)
            return
        await send_json(send, status, orjson.dumps(body))

    def _audit(self, ctx: LLMContext, scope: Scope, principal: Principal, action: str, outcome: str) -> None:
        audit = self.audits.for_config(ctx.config) if self.audits is not None else None
        event = {
            "request_id": ctx.request_id,
            "principal": principal.id,
            "tenant": principal.tenant,
            "method": scope["method"],
            "path": scope["path"],
            "admin_action": action,
            "outcome": outcome,
        }
        target = _target(ctx, scope)
        if target:
            event["target"] = target
        if scope["method"] in ("POST", "PATCH") and ctx.endpoint.startswith(("admin.keys", "admin.teams")):
            event["fields"] = sorted(ctx.payload)[:16]  # what a change sets (names, never values)
        try:
            (audit or self.default_audit).record(event, required=True)
        except AuditUnavailable:
            raise ServiceUnavailable(
                "The audit log is unavailable; admin actions are refused.", code="audit_unavailable"
            ) from None

    async def _config(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        last = self.configs.last_reload
        return 200, {
            "source": ctx.config.source,
            "config": self.configs.current.redacted(),
            "last_reload": None
            if last is None
            else {"ok": last.ok, "error": last.error, "at": last.at, "source": last.source},
        }

    async def _config_reload(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        result = self.configs.reload()
        if result.ok:
            return 200, {"reloaded": True, "source": result.source}
        # The file is what is wrong, not the request's timing (409): 422, in the error shape
        # every client parses, with the outcome beside it. The old config stays in force.
        error = _error(result.error or "The config was not reloaded.", "invalid_config")
        return 422, {"error": error, "reloaded": False, "source": result.source}

    async def _cache(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        if self.cache is None:
            return 404, {"error": _error("No cache layer is mounted.", "cache_not_configured")}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        namespace = (query.get("namespace") or [None])[0]
        model = (query.get("model") or [None])[0]
        removed = await self.cache.purge(namespace=namespace, model=model)
        return 200, {"purged": removed, "namespace": namespace, "model": model}

    async def _deployments(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        if self.deployments is None:
            return 404, {"error": _error("No deployments view is wired.", "not_configured")}
        return 200, self.deployments.report(ctx.config)

    async def _stats(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        """Process health for operators and the soak test."""
        tasks = asyncio.all_tasks()
        kinds = Counter(getattr(t.get_coro(), "__qualname__", "?") for t in tasks)
        return 200, {"pid": os.getpid(), "tasks": len(tasks), "task_kinds": dict(kinds.most_common(8))}

    async def _usage(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        """With `group_by`, the ledger's usage (admin/usage.py); without, the limiter's report
        (the windows and budgets in force now)."""
        if b"group_by=" in scope.get("query_string", b""):
            return await self.ledger.usage(ctx, scope, principal)
        if self.limiter is None:
            return 404, {"error": _error("No rate-limit layer is mounted.", "limits_not_configured")}
        return 200, await self.limiter.usage_report()

    def _store(self, ctx: LLMContext) -> RedisKeyStore:
        store = self.key_stores.for_config(ctx.config) if self.key_stores is not None else None
        if store is None:
            raise InvalidRequest(
                "No key store is configured (auth.key_store).", status=404, code="key_store_not_configured"
            )
        return store

    _check_grants = staticmethod(check_grants)


def _target(ctx: LLMContext, scope: Scope) -> str | None:
    """What an admin action acts on, for the audit line: a key id or a purge's scope."""
    if ctx.endpoint.startswith(("admin.keys", "admin.teams")):
        named = ctx.model if ctx.model is not None else ctx.payload.get("id")
        kind = "team" if ctx.endpoint.startswith("admin.teams") else "key"
        return f"{kind}:{named[:128]}" if isinstance(named, str) and named else None
    if ctx.endpoint == "admin.cache":
        return scope.get("query_string", b"").decode("latin-1")[:256] or "all"
    return None


def _error(message: str, code: str) -> dict[str, Any]:
    return error_object(message, "invalid_request_error", code)
