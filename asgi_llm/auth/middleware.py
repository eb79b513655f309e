"""AuthMiddleware: who is calling (API key, JWT, introspection, or your own hook) and what
they may use. Second in the default stack, just inside Metrics.

It authorizes the model the client named, resolved through the catalog (so no spelling or
alias can dodge the allow-list); the router authorizes every fallback again.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgi_llm.auth.audit import AuditLog, AuditLogs
from asgi_llm.auth.credentials import extract_credential
from asgi_llm.auth.failures import RemoteCheckGuard
from asgi_llm.auth.introspection import Introspector
from asgi_llm.auth.jwt import JWTVerifier, looks_like_jwt
from asgi_llm.auth.keys import ConfigKeys, KeyRecord, KeyStores, RedisKeyStore, hash_key
from asgi_llm.auth.roles import RoleBook, roles_from_claim
from asgi_llm.auth.runtime import key_principal, with_team
from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager
from asgi_llm.context import LLMContext, Principal
from asgi_llm.errors import AuthenticationFailed, ModelNotFound, PermissionDenied, ProxyError
from asgi_llm.exchange import LLMLayer
from asgi_llm.health import HealthRegistry
from asgi_llm.providers.clients import Client, make_client
from asgi_llm.ratelimit.identity import client_address, parse_networks
from asgi_llm.request import ROUTED
from asgi_llm.types import ASGIApp, Receive, Scope, Send

Authenticate = Callable[[Scope], Awaitable[Principal | None]]


class AuthMiddleware(LLMLayer):
    """`key_stores` and `audits` are shared with AdminMiddleware and `health` with the metrics
    layer and `/readyz` when `build_app` builds the stack; built alone, the layer makes its own."""

    kind = "auth"

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: Config | ConfigManager,
        authenticate: Authenticate | None = None,
        key_stores: KeyStores | None = None,
        audits: AuditLogs | None = None,
        health: HealthRegistry | None = None,
    ) -> None:
        super().__init__(app, config=config)
        self.authenticate = authenticate
        self._owns = (key_stores is None, audits is None)
        self.key_stores = key_stores if key_stores is not None else KeyStores()
        self.audits = audits if audits is not None else AuditLogs()
        self._http: Client | None = None
        self._verifiers: dict[Any, JWTVerifier] = {}
        self._introspectors: dict[Any, Introspector] = {}
        self.guard = RemoteCheckGuard()  # what failed credentials may cost (auth/failures.py)
        self._clock = time.monotonic
        # /readyz stays 200 with the key store down: every replica shares this Redis, so taking
        # one out of rotation helps nobody, and JWTs, introspection and (with on_unavailable:
        # open) config keys still authenticate. It lists the store as degraded.
        (health if health is not None else HealthRegistry()).register(
            "auth", self._degraded, ready_name="key_store", check=self._store_reachable
        )

    # -- lifespan ------------------------------------------------------------------------
    async def shutdown(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        owns_stores, owns_audits = self._owns
        if owns_stores:
            await self.key_stores.aclose()
        if owns_audits:
            self.audits.close()

    # -- health --------------------------------------------------------------------------
    def _degraded(self) -> bool | None:
        """The key store is unreachable (None: no key store)."""
        store = self.key_stores.for_config(self.configs.current)
        return None if store is None else store.degraded

    async def _store_reachable(self) -> bool | None:
        store = self.key_stores.for_config(self.configs.current)
        return None if store is None else await store.available()

    # -- the request ---------------------------------------------------------------------
    async def handle(self, ctx: LLMContext, scope: Scope, receive: Receive, send: Send) -> None:
        settings = ctx.config.auth
        if settings is None and self.authenticate is None:
            if ctx.endpoint.startswith("admin"):
                raise PermissionDenied(
                    "The admin API needs auth to be configured.", code="endpoint_not_allowed"
                )
            await self.app(scope, receive, send)
            return
        audit = self.audit_log(ctx.config)
        try:
            principal = await self._identify(ctx, scope)
            if principal.tenant is not None:
                store = self.key_store(ctx.config)
                if store is not None:
                    principal = await with_team(principal, store.teams)
            ctx.principal = principal
            self._authorize(ctx, principal)
        except ProxyError as exc:
            if audit is not None:
                # A 401's code is always invalid_api_key; the audit keeps the finer reason.
                reason = exc.reason if isinstance(exc, AuthenticationFailed) else exc.code
                audit.record(_event(ctx, scope, "deny", reason))
            raise
        if audit is not None:
            audit.record(_event(ctx, scope, "allow", None))
        await self.app(scope, receive, send)

    async def identify(self, ctx: LLMContext, scope: Scope) -> Principal:
        """Who the credential in `scope`'s headers belongs to, found as for any request (the
        dashboard's sign-in asks this too: one implementation). Raises a ProxyError."""
        return await self._identify(ctx, scope)

    def record_decision(self, ctx: LLMContext, scope: Scope, outcome: str, reason: str | None) -> None:
        """The audit line of an auth decision made outside `handle` (the dashboard's sign-in)."""
        audit = self.audit_log(ctx.config)
        if audit is not None:
            audit.record(_event(ctx, scope, outcome, reason))

    async def _identify(self, ctx: LLMContext, scope: Scope) -> Principal:
        if self.authenticate is not None:
            principal = await self.authenticate(scope)
            if principal is None:
                raise AuthenticationFailed("Not authenticated.", reason="missing_api_key")
            return principal
        settings = ctx.config.auth
        assert settings is not None
        token = extract_credential(scope)
        state = ctx.config.derive("auth", _AuthState)
        digest = hash_key(token)
        record = state.keys.lookup(digest)
        if record is not None:  # a config key: who it is comes from the config alone
            store = self.key_store(ctx.config)
            if store is not None and await store.lookup(digest, record) is None:
                raise AuthenticationFailed("Invalid API key.", reason="key_revoked")
            return state.roles.principal(record.id, tenant=record.tenant, roles=record.roles, kind="api_key")
        if settings.jwt is not None and looks_like_jwt(token):
            # Verified against the cached key set; a JWT is never a stored key, so it never
            # waits on the store (nor gets its 503), and costs no per-address budget.
            spec = settings.jwt
            claims = await self._verifier(ctx.config).verify(token)
            return self._from_claims(
                state, claims, spec.subject_claim, spec.roles_claim, spec.tenant_claim, "jwt"
            )
        return await self._vouched_remotely(ctx, scope, state, token, digest)

    async def _vouched_remotely(
        self, ctx: LLMContext, scope: Scope, state: _AuthState, token: str, digest: str
    ) -> Principal:
        """A credential only the key store or the introspection endpoint can vouch for."""
        settings = ctx.config.auth
        assert settings is not None
        store = self.key_store(ctx.config)
        spec = settings.oauth2_introspection
        introspector = self._introspector(ctx.config) if spec is not None else None
        if store is None and introspector is None:
            raise AuthenticationFailed("Invalid API key.")
        # An answer this process already has costs no remote call, so no budget either.
        record = store.cached(digest) if store is not None else None
        claims = introspector.cached(token) if introspector is not None and record is None else None
        if record is None and claims is None:
            record, claims = await self._check_remotely(ctx, scope, store, introspector, token, digest)
        if record is not None:
            return key_principal(state.roles, record, time.time())
        assert spec is not None and claims is not None
        return self._from_claims(
            state, claims, spec.subject_claim, spec.roles_claim, spec.tenant_claim, "introspection"
        )

    async def _check_remotely(
        self,
        ctx: LLMContext,
        scope: Scope,
        store: RedisKeyStore | None,
        introspector: Introspector | None,
        token: str,
        digest: str,
    ) -> tuple[KeyRecord | None, dict[str, Any] | None]:
        """Ask the store, then the introspection endpoint, within the client address's budget
        of failed checks; a credential that failed is not asked about again (auth/failures.py)."""
        settings = ctx.config.auth
        assert settings is not None

        def ask() -> Awaitable[tuple[KeyRecord | None, dict[str, Any] | None]]:
            return _ask(store, introspector, token, digest)

        if settings.failure_limit == 0:
            return await ask()
        return await self.guard.check(
            ask,
            digest=digest,
            address=lambda: client_address(scope, ctx.config.derive("auth.trusted", _trusted_proxies)),
            limit=settings.failure_limit,
            window_s=settings.failure_window_s,
            now=self._clock(),
        )

    @staticmethod
    def _from_claims(
        state: _AuthState,
        claims: dict[str, Any],
        subject: str,
        roles_claim: str,
        tenant_claim: str | None,
        kind: str,
    ) -> Principal:
        sub = claims.get(subject)
        if not isinstance(sub, str) or not sub:
            raise AuthenticationFailed("Invalid token: it names no subject.", reason="invalid_token")
        tenant = claims.get(tenant_claim) if tenant_claim else None
        if tenant_claim and (not isinstance(tenant, str) or not tenant):
            # A tenant is configured to come from this claim: a token without it would fall
            # into a shared tenant-less bucket (limits, budgets, cache). No default: refused.
            raise PermissionDenied(
                f"The token carries no {tenant_claim!r} claim (the tenant).", code="tenant_missing"
            )
        return state.roles.principal(
            f"{kind}:{sub}"[:200],
            tenant=tenant if isinstance(tenant, str) else None,
            roles=roles_from_claim(claims.get(roles_claim)),
            kind=kind,
        )

    @staticmethod
    def _authorize(ctx: LLMContext, principal: Principal) -> None:
        if ctx.endpoint.startswith("admin"):
            if not principal.admin:
                raise PermissionDenied("The admin API needs an admin role.", code="endpoint_not_allowed")
            return
        if not principal.may_call(ctx.grant):
            raise PermissionDenied(
                f"Your role does not allow the {ctx.grant} endpoint.", code="endpoint_not_allowed"
            )
        if ctx.endpoint in ROUTED:
            entry = ctx.requested
            if entry is None:
                raise ModelNotFound(ctx.model or "")
            if not principal.may_use(entry):
                raise PermissionDenied(
                    "You are not allowed to use this model.", param="model", code="model_not_allowed"
                )
            ctx.entry = entry

    # -- per-config resources (created on first use, closed at shutdown) ------------------
    def audit_log(self, config: Config) -> AuditLog | None:
        return self.audits.for_config(config)

    def key_store(self, config: Config) -> RedisKeyStore | None:
        return self.key_stores.for_config(config)

    def _client(self) -> Client:
        if self._http is None:
            self._http = make_client(connect_timeout=3.0, timeout=5.0)
        return self._http

    def _verifier(self, config: Config) -> JWTVerifier:
        spec = config.auth.jwt if config.auth else None
        assert spec is not None  # called only when JWT is configured
        verifier = self._verifiers.get(spec)
        if verifier is None:
            verifier = self._verifiers[spec] = JWTVerifier(spec, self._fetch_json)
        return verifier

    def _introspector(self, config: Config) -> Introspector:
        spec = config.auth.oauth2_introspection if config.auth else None
        assert spec is not None  # called only when introspection is configured
        introspector = self._introspectors.get(spec)
        if introspector is None:
            introspector = self._introspectors[spec] = Introspector(spec, self._post_form)
        return introspector

    async def _fetch_json(self, url: str) -> Any:
        response = await self._client().get(url)
        response.raise_for_status()
        return response.json()

    async def _post_form(self, url: str, data: dict[str, str], auth: tuple[str, str]) -> tuple[int, Any]:
        response = await self._client().post(
            url, data=data, auth=auth, headers={"accept": "application/json"}
        )
        return response.status_code, response.json() if response.status_code == 200 else None


async def _ask(
    store: RedisKeyStore | None, introspector: Introspector | None, token: str, digest: str
) -> tuple[KeyRecord | None, dict[str, Any] | None]:
    """The remote checks, in order: a stored key, then token introspection."""
    record = await store.lookup(digest, None) if store is not None else None
    if record is not None:
        return record, None
    if introspector is not None:
        return None, await introspector.introspect(token)
    raise AuthenticationFailed("Invalid API key.")


def _trusted_proxies(config: Config) -> Any:
    """The proxies whose X-Forwarded-For is believed: the limits section's list."""
    return parse_networks(config.limits.trusted_proxies if config.limits else ())


class _AuthState:
    """What auth derives from one config snapshot."""

    def __init__(self, config: Config) -> None:
        settings = config.auth
        assert settings is not None
        self.keys = ConfigKeys(settings)
        self.roles = RoleBook(settings.roles)


def _event(ctx: LLMContext, scope: Scope, outcome: str, reason: str | None) -> dict[str, Any]:
    principal = ctx.principal
    return {
        "request_id": ctx.request_id,
        "principal": principal.id if principal else None,
        "tenant": principal.tenant if principal else None,
        "kind": principal.kind if principal else None,
        "method": scope["method"],
        "path": scope["path"],
        "endpoint": ctx.endpoint,
        "model": ctx.entry.name if ctx.entry else (ctx.model[:256] if ctx.model else None),
        "outcome": outcome,
        "reason": reason,
    }
