"""Sign-in: the credential is checked by AuthMiddleware's own `identify` (API key, JWT,
introspection or your hook), never by a second implementation, and the decision is audited
like any other."""

from __future__ import annotations

from typing import Any

from asgi_llm.auth.middleware import AuthMiddleware
from asgi_llm.config.loader import Config
from asgi_llm.context import LLMContext, Principal
from asgi_llm.errors import PermissionDenied, ProxyError, ServiceUnavailable
from asgi_llm.types import Scope

ENDPOINT = "admin.ui.signin"


async def sign_in(
    auth: AuthMiddleware | None, config: Config, scope: Scope, credential: bytes, request_id: str
) -> Principal:
    """The admin principal `credential` belongs to; raises the ProxyError that says why not."""
    if auth is None:
        raise ServiceUnavailable("The dashboard is not linked to an auth layer.", code="auth_not_configured")
    if config.auth is None and auth.authenticate is None:
        raise PermissionDenied("The dashboard needs auth to be configured.", code="endpoint_not_allowed")
    # The credential travels as the Authorization header it would be on any admin call; the
    # client address stays, so the failed-check budget per address applies to sign-ins too.
    headers = [(name, value) for name, value in scope["headers"] if name not in _CREDENTIAL_HEADERS]
    probe = {**scope, "headers": [*headers, (b"authorization", b"Bearer " + credential)], "query_string": b""}
    ctx = LLMContext(request_id=request_id, config=config, endpoint=ENDPOINT)
    audit = auth.audit_log(config)
    try:
        principal = await auth.identify(ctx, probe)
        if not principal.admin:
            raise PermissionDenied("The dashboard needs an admin role.", code="endpoint_not_allowed")
    except ProxyError as exc:
        if audit is not None:
            audit.record(_event(ctx, scope, None, "deny", getattr(exc, "reason", None) or exc.code))
        raise
    if audit is not None:
        audit.record(_event(ctx, scope, principal, "allow", None))
    return principal


_CREDENTIAL_HEADERS = frozenset({b"authorization", b"api-key", b"x-api-key", b"cookie"})


def _event(
    ctx: LLMContext, scope: Scope, principal: Principal | None, outcome: str, reason: str | None
) -> dict[str, Any]:
    return {
        "request_id": ctx.request_id,
        "principal": principal.id if principal else None,
        "tenant": principal.tenant if principal else None,
        "kind": principal.kind if principal else None,
        "method": scope["method"],
        "path": scope["path"],
        "endpoint": ENDPOINT,
        "outcome": outcome,
        "reason": reason,
    }


__all__ = ["sign_in"]
