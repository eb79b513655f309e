"""Sign-in: the credential is checked by AuthMiddleware's own `identify` (API key, JWT,
introspection or your hook), never by a second implementation, and the decision is audited
like any other."""

from __future__ import annotations

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
    try:
        principal = await auth.identify(ctx, probe)
        ctx.principal = principal
        if not principal.admin:
            raise PermissionDenied("The dashboard needs an admin role.", code="endpoint_not_allowed")
    except ProxyError as exc:
        auth.record_decision(ctx, scope, "deny", getattr(exc, "reason", None) or exc.code)
        raise
    auth.record_decision(ctx, scope, "allow", None)
    return principal


_CREDENTIAL_HEADERS = frozenset({b"authorization", b"api-key", b"x-api-key", b"cookie"})


__all__ = ["sign_in"]
