"""The dashboard's session: a cookie signed with HMAC-SHA256 that names the principal and
when the session ends, and the CSRF token derived from it.

Stateless on purpose: any process holding the same key accepts the cookie, so a fleet behind
a load balancer needs one shared `admin.ui_secret` and nothing else (no session store to
reach on every call). Without `ui_secret` each process makes its own key at start: sessions
then last until that process restarts, and work with one worker only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

import orjson

from asgi_llm.context import Principal

_CSRF_LABEL = b"asgi-llm dashboard csrf\x00"


@dataclass(frozen=True, slots=True)
class Session:
    """Who signed in, until when (epoch seconds), and the session's own random nonce."""

    principal_id: str
    tenant: str | None
    roles: tuple[str, ...]
    kind: str
    admin: bool
    expires_at: float
    nonce: str


class SessionSigner:
    """Issues and reads session tokens and their CSRF tokens under one key."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the session key must be at least 32 bytes")
        self._key = hashlib.sha256(b"asgi-llm dashboard session\x00" + secret).digest()

    def issue(self, principal: Principal, *, ttl_s: float, now: float) -> tuple[str, Session]:
        session = Session(
            principal_id=principal.id,
            tenant=principal.tenant,
            roles=principal.roles,
            kind=principal.kind,
            admin=principal.admin,
            expires_at=now + ttl_s,
            nonce=base64.urlsafe_b64encode(os.urandom(18)).decode(),
        )
        payload = orjson.dumps(
            {
                "p": session.principal_id,
                "t": session.tenant,
                "r": list(session.roles),
                "k": session.kind,
                "a": session.admin,
                "e": session.expires_at,
                "n": session.nonce,
            }
        )
        body = _b64(payload)
        return f"{body}.{_b64(self._mac(body.encode()))}", session

    def read(self, token: str | None, *, now: float) -> Session | None:
        """The session a token carries, or None: unsigned, tampered with, malformed or expired."""
        if not token or len(token) > 4096:
            return None
        body, _, mac = token.partition(".")
        try:
            given = _unb64(mac)
        except ValueError:
            return None
        if not hmac.compare_digest(given, self._mac(body.encode())):
            return None
        try:
            data = orjson.loads(_unb64(body))
            session = Session(
                principal_id=str(data["p"]),
                tenant=data["t"] if isinstance(data["t"], str) else None,
                roles=tuple(str(role) for role in data["r"]),
                kind=str(data["k"]),
                admin=data["a"] is True,
                expires_at=float(data["e"]),
                nonce=str(data["n"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires_at > now else None

    def csrf_token(self, session: Session) -> str:
        """The token the page echoes in a header: bound to this session, so a token planted
        by someone else (a sibling subdomain setting cookies) never matches."""
        return _b64(self._mac(_CSRF_LABEL + session.nonce.encode()))

    def csrf_ok(self, session: Session, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf_token(session).encode())

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64") from exc


__all__ = ["Session", "SessionSigner"]
