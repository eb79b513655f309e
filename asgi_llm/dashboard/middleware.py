"""DashboardMiddleware: the admin dashboard at `admin.ui_path` (`/admin/ui`), off unless
`admin: {ui: true}`.

It sits inside AuthMiddleware and outside AdminMiddleware: its pages and assets are not LLM
routes, so the layers outside let them through, and its JSON calls go inward to the admin
API as the signed-in principal (dashboard/forward.py). Every answer under its path carries
the Content-Security-Policy (dashboard/wire.py).

    <ui>/            the page (a session, or an admin's `Authorization: Bearer`, opens it)
    <ui>/signin      GET the form, POST a credential -> session cookie
    <ui>/signout     POST (CSRF) -> cookies cleared
    <ui>/session     GET who is signed in, until when
    <ui>/static/*    the page's scripts and styles
    <ui>/api/<path>  the admin API's /admin/<path>; cookie, and CSRF on every change
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable

import orjson

from asgi_llm.auth.middleware import AuthMiddleware
from asgi_llm.auth.roles import RoleBook
from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager
from asgi_llm.config.schema import Admin
from asgi_llm.context import Principal
from asgi_llm.dashboard import wire
from asgi_llm.dashboard.assets import Assets
from asgi_llm.dashboard.forward import forward
from asgi_llm.dashboard.liveness import key_still_valid
from asgi_llm.dashboard.session import Session, SessionSigner
from asgi_llm.dashboard.signin import sign_in
from asgi_llm.errors import AuthenticationFailed, InvalidRequest, PermissionDenied, ProxyError
from asgi_llm.exchange import LLMLayer
from asgi_llm.request import ClientDisconnected, read_body, route_path
from asgi_llm.responses import Header, send_error, send_json, send_response
from asgi_llm.types import ASGIApp, Receive, Scope, Send

_SAFE_METHODS = frozenset({"GET", "HEAD"})
_MAX_FORM_BYTES = 16 * 1024


class DashboardMiddleware(LLMLayer):
    """`auth` is the stack's AuthMiddleware, whose `identify` checks sign-in credentials;
    `build_app` links it (`dashboard.auth = auth`), since Auth wraps this layer."""

    kind = "dashboard"
    # Auth outside: it lets the dashboard's paths through, and the admin calls the dashboard
    # makes inward already carry their principal (Auth would ask them for a credential).
    must_be_inside = ("auth",)

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: Config | ConfigManager,
        auth: AuthMiddleware | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(app, config=config)
        self.auth = auth
        self.assets = Assets.load()
        self._clock = clock
        # Used when `admin.ui_secret` is not set: sessions of this process only.
        self._process_signer = SessionSigner(os.urandom(32))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state")
        if state and state.get("llm") is not None:  # an LLM request on its way in: not ours
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def pass_through(self, scope: Scope, receive: Receive, send: Send) -> None:
        config = self.configs.current
        settings = config.admin
        if settings is None or not settings.ui:
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        base = config.server.path_prefix + settings.ui_path
        if path != base and not path.startswith(base + "/"):
            await self.app(scope, receive, send)
            return
        mount = scope["path"][: len(scope["path"]) - len(path)]
        page = _Request(self, config, settings, scope, mount + base)
        await page.serve(path[len(base) :], receive, wire.with_security_headers(send))

    def signer(self, config: Config) -> SessionSigner:
        secret = config.admin.ui_secret if config.admin else None
        if secret is None:
            return self._process_signer
        return config.derive("dashboard.signer", lambda c: SessionSigner(secret.encode()))

    def principal(self, config: Config, session: Session) -> Principal | None:
        """The session's principal under the config in force now: a role that lost `admin`
        since the sign-in closes the dashboard to it at once."""
        if config.auth is not None:
            book = config.derive("dashboard.roles", lambda c: RoleBook(c.auth.roles if c.auth else {}))
            principal = book.principal(
                session.principal_id, tenant=session.tenant, roles=session.roles, kind=session.kind
            )
        else:  # your own `authenticate` hook made it: what it said at sign-in stands
            principal = Principal(
                session.principal_id, session.tenant, session.roles, session.kind, session.admin
            )
        return principal if principal.admin else None


class _Request:
    """One request under the dashboard's path."""

    def __init__(self, layer: DashboardMiddleware, config: Config, settings: Admin, scope: Scope, base: str):
        self.layer, self.config, self.settings, self.scope, self.base = layer, config, settings, scope, base
        self.method: str = scope["method"]
        self.signer = layer.signer(config)
        self.now = layer._clock()
        self.session = self.signer.read(wire.cookies(scope).get(wire.SESSION_COOKIE), now=self.now)

    async def serve(self, sub: str, receive: Receive, send: Send) -> None:
        try:
            await self._route(sub, receive, send)
        except ClientDisconnected:
            return
        except ProxyError as exc:
            await send_error(send, exc)

    async def _route(self, sub: str, receive: Receive, send: Send) -> None:
        if sub == "":
            await wire.redirect(send, self.base + "/")
        elif sub == "/":
            await self._index(receive, send)
        elif sub == "/signin":
            await self._signin(receive, send)
        elif sub == "/signout":
            await self._signout(send)
        elif sub == "/session":
            await self._who(send)
        elif sub.startswith("/static/"):
            await self._asset(sub.removeprefix("/static/"), send)
        elif sub.startswith("/api/"):
            await self._api(sub.removeprefix("/api/"), receive, send)
        else:
            await send_error(send, InvalidRequest("No such dashboard page.", status=404, code="not_found"))

    async def _index(self, receive: Receive, send: Send) -> None:
        self._allow("GET", "HEAD")
        cookies: tuple[Header, ...] = ()
        if wire.header_value(self.scope, b"authorization") is not None:
            credential = (wire.header_value(self.scope, b"authorization") or "").partition(" ")[2]
            principal = await self._sign_in(credential.strip().encode("latin-1"))
            cookies = self._session_cookies(principal)
        elif await self._signed_in() is None:
            await wire.redirect(send, self.base + "/signin")
            return
        await self._page("index.html", send, cookies)

    async def _signin(self, receive: Receive, send: Send) -> None:
        self._allow("GET", "POST")
        if self.method == "GET":
            await self._signin_page(send, 200, "")
            return
        # No session cookie exists yet for SameSite to guard: a cross-site form posting an
        # attacker's key (login CSRF) is refused by the browser's own fetch metadata.
        if wire.header_value(self.scope, b"sec-fetch-site") not in (None, "same-origin", "none"):
            raise PermissionDenied("Cross-site sign-in refused.", code="csrf_failed")
        body = await read_body(self.scope, receive, _MAX_FORM_BYTES)
        credential = wire.form_fields(body).get("credential", "").strip()
        try:
            principal = await self._sign_in(credential.encode("utf-8", "replace"))
        except ProxyError as exc:
            status = exc.status if exc.status >= 500 else 401
            await self._signin_page(send, status, "Sign-in failed: " + _reason(exc))
            return
        await wire.redirect(send, self.base + "/", self._session_cookies(principal))

    async def _sign_in(self, credential: bytes) -> Principal:
        if not credential:
            raise AuthenticationFailed("No credential given.", reason="missing_api_key")
        request_id = self.layer.request_ids.for_scope(self.scope)
        return await sign_in(self.layer.auth, self.config, self.scope, credential, request_id)

    async def _signout(self, send: Send) -> None:
        self._allow("POST")
        await self._require_session(csrf=True)
        cleared = tuple(
            wire.set_cookie(
                name, "", path=self.base, secure=wire.is_https(self.scope), http_only=True, max_age=0
            )
            for name in (wire.SESSION_COOKIE, wire.CSRF_COOKIE)
        )
        await send_json(send, 200, b'{"signed_out":true}', cleared)

    async def _who(self, send: Send) -> None:
        self._allow("GET")
        session, principal = await self._require_session(csrf=False)
        body = {
            "principal": principal.id,
            "tenant": principal.tenant,
            "roles": list(principal.roles),
            "expires_at": session.expires_at,
            "ui_path": self.base,
        }
        await send_json(send, 200, orjson.dumps(body))

    async def _asset(self, name: str, send: Send) -> None:
        self._allow("GET", "HEAD")
        asset = self.layer.assets.get(name)
        if asset is None or name.endswith(".html"):
            raise InvalidRequest("No such file.", status=404, code="not_found")
        if wire.header_value(self.scope, b"if-none-match") == asset.etag.decode():
            await send_response(send, 304, b"", asset.content_type, ((b"etag", asset.etag),))
            return
        headers = ((b"etag", asset.etag), (b"cache-control", b"no-cache"))
        body = b"" if self.method == "HEAD" else asset.body
        await send_response(send, 200, body, asset.content_type, headers, content_length=len(asset.body))

    async def _api(self, rest: str, receive: Receive, send: Send) -> None:
        _, principal = await self._require_session(csrf=self.method not in _SAFE_METHODS)
        request_id = self.layer.request_ids.for_scope(self.scope)
        done = await forward(
            self.layer.app, self.config, principal, rest, self.scope, receive, send, request_id
        )
        if not done:
            raise InvalidRequest("No such admin route.", status=404, code="not_found")

    async def _signed_in(self) -> tuple[Session, Principal] | None:
        """The session and its principal, if the session is good, its principal still an
        admin under the config in force, and the key it was opened with still valid."""
        session = self.session
        principal = self.layer.principal(self.config, session) if session is not None else None
        if session is None or principal is None:
            return None
        key_stores = self.layer.auth.key_stores if self.layer.auth is not None else None
        if not await key_still_valid(key_stores, self.config, session):
            return None
        return session, principal

    async def _require_session(self, *, csrf: bool) -> tuple[Session, Principal]:
        found = await self._signed_in()
        if found is None:
            raise AuthenticationFailed("Sign in to the dashboard first.", reason="no_session")
        session, principal = found
        if csrf and not self.signer.csrf_ok(session, wire.header_value(self.scope, wire.CSRF_HEADER)):
            raise PermissionDenied("Missing or wrong CSRF token.", code="csrf_failed")
        return found

    def _session_cookies(self, principal: Principal) -> tuple[Header, ...]:
        ttl = self.settings.ui_session_ttl_s
        token, session = self.signer.issue(principal, ttl_s=ttl, now=self.now)
        secure = wire.is_https(self.scope)
        return (
            wire.set_cookie(
                wire.SESSION_COOKIE, token, path=self.base, secure=secure, http_only=True, max_age=int(ttl)
            ),
            # Readable by the page's script, which echoes it in X-CSRF-Token on every change.
            wire.set_cookie(
                wire.CSRF_COOKIE,
                self.signer.csrf_token(session),
                path=self.base,
                secure=secure,
                http_only=False,
                max_age=int(ttl),
            ),
        )

    async def _page(self, name: str, send: Send, headers: tuple[Header, ...] = ()) -> None:
        asset = self.layer.assets.get(name)
        assert asset is not None, name
        await wire.send_html(send, 200, asset.body, headers)

    async def _signin_page(self, send: Send, status: int, message: str) -> None:
        asset = self.layer.assets.get("signin.html")
        assert asset is not None
        body = asset.body.replace(b"<!--message-->", html.escape(message).encode())
        await wire.send_html(send, status, body)

    def _allow(self, *methods: str) -> None:
        if self.method not in methods:
            raise InvalidRequest(
                f"Use {' or '.join(methods)} here.",
                status=405,
                code="method_not_allowed",
                headers=[(b"allow", ", ".join(methods).encode())],
            )


def _reason(exc: ProxyError) -> str:
    if exc.status == 401:
        return "the credential was not accepted."
    if exc.status == 403:
        return "this credential has no admin role."
    return exc.message


__all__ = ["DashboardMiddleware"]
