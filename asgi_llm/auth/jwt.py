"""JWT bearer tokens verified against a JWKS (joserfc).

Algorithms are pinned by config, never read from the token; `iss`, `aud` and `exp` are
required; the key set is cached, refetched at most once per `jwks_min_refresh_s` on an unknown
`kid`, and kept up to `jwks_max_stale_s` while the IdP is down (then 503, never an allow).
Header-supplied keys and key URLs (`jwk`, `jku`, `x5u`, `x5c`) are never used.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from typing import Any

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from asgi_llm.config.schema import JWTConfig
from asgi_llm.errors import AuthenticationFailed, ServiceUnavailable

_ASYMMETRIC = frozenset({"RSA", "EC", "OKP"})
_VERIFIED_CACHE_SIZE = 10_000


class JWKSUnavailable(Exception):
    pass


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


class JWTVerifier:
    def __init__(self, settings: JWTConfig, fetch_jwks: Any, *, clock: Any = time.time) -> None:
        self.settings = settings
        self._fetch = fetch_jwks  # async (url) -> dict: the project's HTTP client
        self._clock = clock
        self._keys: KeySet | None = None
        self._fetched_at = 0.0  # monotonic time of the last good fetch
        self._attempted_at = -1e9  # monotonic time of the last attempt, good or not
        self._lock = asyncio.Lock()
        self._verified: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self.fetches = 0

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or AuthenticationFailed / ServiceUnavailable."""
        digest = hashlib.sha256(token.encode()).hexdigest()  # the full token, never a prefix
        cached = self._verified.get(digest)
        now = self._clock()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            header = extract_compact(token.encode()).protected
        except (JoseError, ValueError, TypeError, RecursionError, UnicodeError):
            raise AuthenticationFailed("Invalid token.", reason="invalid_token") from None
        if not isinstance(header, dict) or header.get("alg") not in self.settings.algorithms:
            raise AuthenticationFailed("Invalid token.", reason="invalid_token")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationFailed("Invalid token.", reason="invalid_token")
        keys = await self._key_set(kid)
        try:
            decoded = jwt.decode(token, keys, algorithms=list(self.settings.algorithms))
            claims = decoded.claims
            jwt.JWTClaimsRegistry(
                now=int(now),
                leeway=int(self.settings.leeway_s),
                iss={"essential": True, "value": self.settings.issuer},
                aud={"essential": True, "value": self.settings.audience},
                exp={"essential": True},
            ).validate(claims)
        except ExpiredTokenError:
            raise AuthenticationFailed("The token has expired.", reason="token_expired") from None
        except (JoseError, ValueError, TypeError, KeyError, RecursionError):
            raise AuthenticationFailed("Invalid token.", reason="invalid_token") from None
        self._remember(digest, claims)
        return claims

    def _remember(self, digest: str, claims: dict[str, Any]) -> None:
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)):
            return
        self._verified[digest] = (float(expires), claims)
        self._verified.move_to_end(digest)
        while len(self._verified) > _VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)

    async def _key_set(self, kid: str | None) -> KeySet:
        now = time.monotonic()
        settings = self.settings
        fresh = self._keys is not None and now - self._fetched_at < settings.jwks_ttl_s
        known = self._keys is not None and (kid is None or _has_kid(self._keys, kid))
        if fresh and known:
            return self._keys  # type: ignore[return-value]
        if self._keys is not None and not fresh:
            wait = 0.0  # periodic refresh
        else:
            wait = settings.jwks_min_refresh_s  # unknown kid: bounded refetch rate
        if now - self._attempted_at >= wait:
            async with self._lock:
                if self._attempted_at < now:  # one fetch for all the waiters
                    await self._refresh()
        if self._keys is None:
            raise ServiceUnavailable(
                "The identity provider's keys are unavailable.", code="dependency_unavailable", retry_after=5
            )
        if time.monotonic() - self._fetched_at > settings.jwks_ttl_s + settings.jwks_max_stale_s:
            raise ServiceUnavailable(
                "The identity provider's keys are too old to trust.",
                code="dependency_unavailable",
                retry_after=5,
            )
        if kid is not None and not _has_kid(self._keys, kid):
            raise AuthenticationFailed("Invalid token.", reason="invalid_token")
        return self._keys

    async def _refresh(self) -> None:
        self._attempted_at = time.monotonic()
        self.fetches += 1
        try:
            document = await self._fetch(self.settings.jwks_url)
            keys = [
                k
                for k in document["keys"]
                if isinstance(k, dict) and k.get("kty") in _ASYMMETRIC and k.get("use", "sig") == "sig"
            ]
            key_set = KeySet.import_key_set({"keys": keys})
        except Exception:  # noqa: BLE001 - any failure keeps the cached keys
            return
        self._keys = key_set
        self._fetched_at = time.monotonic()


def _has_kid(keys: KeySet, kid: str) -> bool:
    try:
        keys.get_by_kid(kid)
    except (InvalidKeyIdError, ValueError):
        return False
    return True
