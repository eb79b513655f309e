"""The dashboard's JSON calls go to the admin API in process: `<ui>/api/usage?...` becomes
`/admin/usage?...` with the signed-in principal already on the request's context, so the
admin layer checks, scopes (tenant admins) and audits it as that principal.

No credential is made up or carried: the session cookie authorizes `<ui>/*` only, and a
call it opens reaches the admin routes and nothing else.
"""

from __future__ import annotations

from asgi_llm.config.loader import Config
from asgi_llm.context import LLMContext, Principal
from asgi_llm.exchange import run_exchange
from asgi_llm.request import match_endpoint, route_path
from asgi_llm.types import ASGIApp, Receive, Scope, Send

_DROPPED = frozenset({b"cookie", b"authorization", b"api-key", b"x-api-key", b"x-csrf-token"})


def admin_scope(scope: Scope, config: Config, rest: str) -> Scope:
    """`scope` re-addressed to `<path_prefix>/admin/<rest>` (under the same mount point)."""
    path: str = scope["path"]
    mount = path[: len(path) - len(route_path(scope))]
    target = f"{mount}{config.server.path_prefix}/admin/{rest}"
    return {
        **scope,
        "path": target,
        "raw_path": target.encode(),
        "headers": [(name, value) for name, value in scope["headers"] if name not in _DROPPED],
        "state": dict(scope.get("state") or {}),
    }


async def forward(
    app: ASGIApp,
    config: Config,
    principal: Principal,
    rest: str,
    scope: Scope,
    receive: Receive,
    send: Send,
    request_id: str,
) -> bool:
    """Run the admin action `rest` names as `principal`; False if it names none."""
    inner = admin_scope(scope, config, rest)
    route = match_endpoint(inner, config.server.path_prefix)
    if route is None or not route.name.startswith("admin."):
        return False

    async def as_principal(ctx: LLMContext, scope: Scope, receive: Receive, send: Send) -> None:
        ctx.principal = principal
        await app(scope, receive, send)

    await run_exchange(config, route, inner, receive, send, as_principal, request_id)
    return True


__all__ = ["admin_scope", "forward"]
