"""JWT bearer tokens verified against a JWKS (joserfc).

Algorithms are pinned by config, never read from the token; `iss`, `aud` and `exp` are
required; the key set is cached, refetched on an unknown `kid` at most once per
`jwks_min_refresh_s` for the whole process (never per client address: whoever triggers a
refetch, everyone gets the rotated key), and kept up to `jwks_max_stale_s` while the IdP is
down (then 503, never an allow).
Header-supplied keys and key URLs (`jwk`, `jku`, `x5u`, `x5c`) are never used.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
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
        self._kid_refetched_at = -1e9  # ... of the last one spent on an unknown kid
        self._generation = 0  # attempts so far: callers queued behind one share its answer
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
        keys = await self._key_set(kid, token)
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

    async def _key_set(self, kid: str | None, token: str) -> KeySet:
        now = time.monotonic()
        settings = self.settings
        due = self._keys is None or now - self._fetched_at >= settings.jwks_ttl_s
        failed_last = self._attempted_at > self._fetched_at
        if due and (not failed_last or now - self._attempted_at >= settings.jwks_min_refresh_s):
            # The first fetch or the periodic one. After a failed attempt (the IdP is down),
            # retried once per jwks_min_refresh_s, not once per request.
            await self._refresh_once()
        elif self._keys is not None and kid is not None and not _has_kid(self._keys, kid):
            if self._lock.locked():
                await self._refresh_once()  # a fetch is under way: its answer may hold the kid
            elif now - self._kid_refetched_at >= settings.jwks_min_refresh_s and self._plausible(token):
                # A rotated key is picked up here. The allowance is global and spent only on
                # unknown kids (not on the first or periodic fetch), and only for a token that
                # claims to be ours, so a client sending other issuers' tokens cannot use it up.
                self._kid_refetched_at = now
                await self._refresh_once()
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

    def _plausible(self, token: str) -> bool:
        """Whether the token's unverified claims name our issuer and audience and are not
        expired. Anyone can write such claims: this only decides what a refetch is spent on."""
        try:
            claims = json.loads(extract_compact(token.encode()).payload)
        except (JoseError, ValueError, TypeError, RecursionError, UnicodeError):
            return False
        if not isinstance(claims, dict):
            return False
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        expires = claims.get("exp")
        return (
            claims.get("iss") == self.settings.issuer
            and self.settings.audience in audiences
            and isinstance(expires, (int, float))
            and expires + self.settings.leeway_s > self._clock()
        )

    async def _refresh_once(self) -> None:
        """Fetch the key set; callers that queue up behind a fetch share its answer."""
        generation = self._generation
        async with self._lock:
            if self._generation == generation:
                await self._refresh()

    async def _refresh(self) -> None:
        self._attempted_at = time.monotonic()
        self._generation += 1
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
