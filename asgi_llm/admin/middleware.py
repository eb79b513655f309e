"""AdminMiddleware: config view and reload, cache purge, usage, fleet keys.

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
from asgi_llm.admin.usage import LedgerQueries, RawBody
from asgi_llm.auth.audit import AuditLog, AuditLogs, AuditUnavailable
from asgi_llm.auth.keys import KeyRecord, KeyStores, RedisKeyStore
from asgi_llm.auth.middleware import AuthMiddleware
from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager
from asgi_llm.context import LLMContext, Principal
from asgi_llm.errors import InvalidRequest, PermissionDenied, ProxyError, ServiceUnavailable, error_object
from asgi_llm.exchange import LLMLayer
from asgi_llm.redis_client import errors as redis_errors
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
            "admin.keys": self._keys,
            "admin.keys.revoke": self._keys_revoke,
        }

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

    async def _keys(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        store = self._store(ctx)
        payload = ctx.payload
        key_id, roles, tenant = payload.get("id"), payload.get("roles", []), payload.get("tenant")
        if not isinstance(key_id, str) or not key_id or len(key_id) > 128:
            raise InvalidRequest("'id' must be a non-empty string.", param="id")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidRequest("'roles' must be an array of role names.", param="roles")
        if tenant is not None and not isinstance(tenant, str):
            raise InvalidRequest("'tenant' must be a string.", param="tenant")
        self._check_grants(ctx.config, principal, roles)
        if principal.tenant is not None:  # a tenant's admin mints keys of its own tenant only
            if tenant not in (None, principal.tenant):
                raise PermissionDenied(
                    "You can mint keys for your own tenant only.", code="grant_not_allowed"
                )
            tenant = principal.tenant
        try:
            key = await store.create(key_id, tuple(roles), tenant)
        except ValueError as exc:
            return 409, {"error": _error(str(exc), "key_exists")}
        except redis_errors() as exc:
            raise _store_down() from exc
        return 201, {"id": key_id, "key": key, "roles": roles, "tenant": tenant}

    async def _keys_revoke(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        key_id = ctx.payload.get("id")
        if not isinstance(key_id, str) or not key_id or len(key_id) > 128:
            raise InvalidRequest("'id' must be a non-empty string.", param="id")
        store = self._store(ctx)
        try:
            target = _config_record(ctx.config, key_id) or await store.record_for(key_id)
            if target is not None:  # nobody revokes a key that holds more than they do
                self._check_grants(ctx.config, principal, list(target.roles))
                if principal.tenant is not None and target.tenant != principal.tenant:
                    raise PermissionDenied(
                        "You can revoke keys of your own tenant only.", code="grant_not_allowed"
                    )
            await store.revoke(key_id)
        except redis_errors() as exc:
            raise _store_down() from exc
        return 200, {"revoked": key_id}

    def _store(self, ctx: LLMContext) -> RedisKeyStore:
        store = self.key_stores.for_config(ctx.config) if self.key_stores is not None else None
        if store is None:
            raise InvalidRequest(
                "No key store is configured (auth.key_store).", status=404, code="key_store_not_configured"
            )
        return store

    @staticmethod
    def _check_grants(config: Config, principal: Principal, roles: list[str]) -> None:
        """A principal can never mint a key that holds more than it holds itself."""
        defined = config.auth.roles if config.auth else {}
        for name in roles:
            role = defined.get(name)
            if role is None:
                raise InvalidRequest(f"Unknown role {name!r}.", param="roles")
            wider = (
                (role.admin and not principal.admin)
                or ("*" not in principal.models and not set(role.models) <= set(principal.models))
                or ("*" not in principal.endpoints and not set(role.endpoints) <= set(principal.endpoints))
            )
            if wider:
                raise PermissionDenied(f"Role {name!r} grants more than you hold.", code="grant_not_allowed")


def _config_record(config: Config, key_id: str) -> KeyRecord | None:
    for key in config.auth.api_keys if config.auth else ():
        if key.id == key_id:
            return KeyRecord(key.id, key.key_sha256, key.roles, key.tenant)
    return None


def _store_down() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The key store is unavailable; try again shortly.", code="dependency_unavailable", retry_after=1
    )


def _target(ctx: LLMContext, scope: Scope) -> str | None:
    """What an admin action acts on, for the audit line: a key id or a purge's scope."""
    if ctx.endpoint in ("admin.keys", "admin.keys.revoke"):
        key_id = ctx.payload.get("id") if isinstance(ctx.payload, dict) else None
        return f"key:{key_id[:128]}" if isinstance(key_id, str) and key_id else None
    if ctx.endpoint == "admin.cache":
        return scope.get("query_string", b"").decode("latin-1")[:256] or "all"
    return None


def _error(message: str, code: str) -> dict[str, Any]:
    return error_object(message, "invalid_request_error", code)
