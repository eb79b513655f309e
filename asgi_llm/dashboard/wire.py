"""What every dashboard answer carries on the wire: the Content-Security-Policy and its
companions, the session cookies, and the small answers the layer gives itself (pages, redirects).
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import parse_qsl

from asgi_llm.responses import Header, send_response
from asgi_llm.types import Message, Scope, Send

# No inline script or style anywhere (not even a style attribute), no eval, nothing from
# another origin, and no page may frame the dashboard.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[Header, ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
NO_STORE: Header = (b"cache-control", b"no-store")
HTML = b"text/html; charset=utf-8"

SESSION_COOKIE = "asgi_llm_ui"
CSRF_COOKIE = "asgi_llm_ui_csrf"
CSRF_HEADER = b"x-csrf-token"


def with_security_headers(send: Send) -> Send:
    """`send`, adding the security headers to the response's start (whoever answers)."""

    async def secured(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {name.lower() for name, _ in message.get("headers", ())}
            extra = [header for header in SECURITY_HEADERS if header[0] not in names]
            if b"cache-control" not in names:
                extra.append(NO_STORE)
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return secured


def cookies(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope["headers"]:
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header is no session
                continue
    return {key: morsel.value for key, morsel in jar.items()}


def is_https(scope: Scope) -> bool:
    return scope.get("scheme") in ("https", "wss")


def set_cookie(name: str, value: str, *, path: str, secure: bool, http_only: bool, max_age: int) -> Header:
    """A cookie for the dashboard's own path only, never sent to the proxy's /v1 routes."""
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={max_age}", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    return (b"set-cookie", "; ".join(parts).encode())


def form_fields(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def header_value(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def send_html(send: Send, status: int, body: bytes, headers: tuple[Header, ...] = ()) -> None:
    await send_response(send, status, body, HTML, headers)


async def redirect(send: Send, location: str, headers: tuple[Header, ...] = ()) -> None:
    await send_response(send, 303, b"", b"text/plain", ((b"location", location.encode()), *headers))


__all__ = [
    "CSP",
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "cookies",
    "form_fields",
    "header_value",
    "is_https",
    "redirect",
    "send_html",
    "set_cookie",
    "with_security_headers",
]
