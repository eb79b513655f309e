"""OAuth2 token introspection (RFC 7662) with a short cache keyed by the full token's hash."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from asgi_llm.auth.keys import _TTLCache
from asgi_llm.config.schema import IntrospectionConfig
from asgi_llm.errors import AuthenticationFailed, ServiceUnavailable


class Introspector:
    def __init__(self, settings: IntrospectionConfig, post_form: Any) -> None:
        self.settings = settings
        self._post = post_form  # async (url, data, auth) -> (status, json)
        self._positive = _TTLCache(settings.cache_ttl_s)
        self._negative = _TTLCache(settings.negative_cache_ttl_s)
        self.calls = 0

    def cached(self, token: str) -> dict[str, Any] | None:
        """The claims of an active answer still cached (and not expired), without a call."""
        hit, claims = self._positive.get(_digest(token))
        if hit and (not isinstance(claims.get("exp"), (int, float)) or claims["exp"] > time.time()):
            return claims  # type: ignore[no-any-return]
        return None

    async def introspect(self, token: str) -> dict[str, Any]:
        cached = self.cached(token)
        if cached is not None:
            return cached
        digest = _digest(token)
        if self._negative.get(digest)[0]:
            raise AuthenticationFailed("Invalid token.", reason="invalid_token")
        self.calls += 1
        try:
            status, body = await self._post(
                self.settings.url,
                {"token": token, "token_type_hint": "access_token"},
                (self.settings.client_id, self.settings.client_secret),
            )
        except Exception as exc:  # noqa: BLE001 - transport or decoding: the IdP is down
            raise ServiceUnavailable(
                "The token introspection service is unavailable.",
                code="dependency_unavailable",
                retry_after=5,
            ) from exc
        if status != 200 or not isinstance(body, dict):
            raise ServiceUnavailable(
                "The token introspection service is unavailable.",
                code="dependency_unavailable",
                retry_after=5,
            )
        if body.get("active") is not True:
            self._negative.put(digest, True)
            raise AuthenticationFailed("Invalid token.", reason="invalid_token")
        exp = body.get("exp")
        if isinstance(exp, (int, float)) and exp <= time.time():
            raise AuthenticationFailed("The token has expired.", reason="token_expired")
        self._positive.put(digest, body)
        return body


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()  # the full token, never a prefix
