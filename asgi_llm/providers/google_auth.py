"""Vertex AI's credentials: an OAuth2 access token from a service-account key (RFC 7523's JWT
bearer grant, signed RS256 with joserfc), and the transport that puts it on every request.

The key file is read when the deployment's transport is made (its first request), never at
import or config load; the private key stays in memory and never reaches a log, an error
or a metric. The grant goes to the key file's `token_uri`, through the deployment's own pool.

A token is reused until it goes stale (5 minutes before it expires, or a quarter of its
lifetime for short ones); a stale one is still sent while one background task fetches the
next, so no request waits for a refresh. Only when no token is valid do requests wait, all
on the same single fetch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from joserfc import jwt
from joserfc.jwk import RSAKey

from asgi_llm.config.schema import Deployment
from asgi_llm.config.urls import check_http_url
from asgi_llm.errors import UpstreamError
from asgi_llm.providers.transport import (
    TransportError,
    UpstreamRequest,
    UpstreamResponse,
    UpstreamTransport,
)

log = logging.getLogger("asgi_llm.providers")

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
ASSERTION_LIFETIME_S = 3600  # the longest Google accepts
FETCH_TIMEOUT_S = 30.0
RETRY_AFTER_FAILURE_S = 5.0  # a failed background refresh is not retried on every request
MAX_TOKEN_ANSWER = 64 * 1024


class CredentialsError(Exception):
    """The key file cannot be used, or the token endpoint refused the grant. The message
    never holds key material: it is safe to log."""


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    email: str
    token_uri: str
    key_id: str | None
    key: RSAKey = dataclasses.field(repr=False)


def load_service_account(path: str) -> ServiceAccount:
    """A service-account key file (`gcloud iam service-accounts keys create`)."""
    try:
        with open(path, "rb") as file:
            data = orjson.loads(file.read(1 << 20))
    except OSError as exc:
        raise CredentialsError(f"cannot read the credentials file ({exc.__class__.__name__})") from None
    except orjson.JSONDecodeError:
        raise CredentialsError("the credentials file is not JSON") from None
    if not isinstance(data, dict) or data.get("type") != "service_account":
        kind = data.get("type") if isinstance(data, dict) else None
        raise CredentialsError(f"the credentials file is not a service-account key (type {str(kind)[:40]!r})")
    email, pem = data.get("client_email"), data.get("private_key")
    if not isinstance(email, str) or not isinstance(pem, str):
        raise CredentialsError("the credentials file lacks client_email or private_key")
    token_uri = data.get("token_uri") or DEFAULT_TOKEN_URI
    try:
        check_http_url(token_uri)
    except ValueError:
        raise CredentialsError("the credentials file's token_uri is not an http(s) URL") from None
    try:
        key = RSAKey.import_key(pem)
    except Exception:  # noqa: BLE001 - whatever the reason, its text may quote the key
        raise CredentialsError("the credentials file's private_key is not an RSA private key") from None
    if not key.is_private:
        raise CredentialsError("the credentials file's private_key is not an RSA private key")
    key_id = data.get("private_key_id")
    return ServiceAccount(email, token_uri, key_id if isinstance(key_id, str) else None, key)


def assertion(account: ServiceAccount, now: float) -> str:
    """The signed JWT the grant presents: this account asks its token endpoint for a
    cloud-platform token."""
    header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
    if account.key_id:
        header["kid"] = account.key_id
    issued = int(now)
    claims = {
        "iss": account.email,
        "scope": SCOPE,
        "aud": account.token_uri,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME_S,
    }
    return jwt.encode(header, claims, account.key, algorithms=["RS256"])


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    stale_at: float  # from here a background refresh starts
    expires_at: float  # from here it is no longer sent


class AccessTokens:
    """One deployment's access token, fetched single-flight. `send` is how the grant goes
    out (the deployment's pool); `clock` is monotonic and `wall` the time JWTs carry."""

    def __init__(
        self,
        account: ServiceAccount,
        send: Callable[[UpstreamRequest], Any],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.account = account
        self._send = send
        self._clock = clock
        self._wall = wall
        self._token: _Token | None = None
        self._fetch_task: asyncio.Task[str] | None = None
        self._retry_at = 0.0
        self.fetches = 0  # grants sent (tests, and the debug log)

    async def get(self) -> str:
        now = self._clock()
        token = self._token
        if token is not None and now < token.stale_at:
            return token.value
        if token is not None and now < token.expires_at:
            if now >= self._retry_at:
                self._fetch()  # in the background: this request goes on with the old token
            return token.value
        # shield: a request cancelled while waiting (its client left) does not cancel the
        # fetch every other waiter needs.
        return await asyncio.shield(self._fetch())

    def invalidate(self, value: str) -> None:
        """The upstream refused this token (401): fetch a new one next time."""
        if self._token is not None and self._token.value == value:
            self._token = None

    def _fetch(self) -> asyncio.Task[str]:
        task = self._fetch_task
        if task is None or task.done():
            task = self._fetch_task = asyncio.get_running_loop().create_task(self._grant())
            task.add_done_callback(self._fetched)
        return task

    def _fetched(self, task: asyncio.Task[str]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # Seen here once, so a background refresh that failed is never "never retrieved".
            self._retry_at = self._clock() + RETRY_AFTER_FAILURE_S
            log.warning(
                "vertex: access token refresh for %s failed: %s",
                self.account.email,
                task.exception(),
            )

    async def _grant(self) -> str:
        started = self._clock()
        form = urlencode({"grant_type": GRANT_TYPE, "assertion": assertion(self.account, self._wall())})
        request = UpstreamRequest(
            "POST",
            self.account.token_uri,
            {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
            form.encode(),
        )
        self.fetches += 1
        try:
            async with asyncio.timeout(FETCH_TIMEOUT_S):
                response: UpstreamResponse = await self._send(request)
                try:
                    body = b""
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_TOKEN_ANSWER:
                            raise CredentialsError("the token endpoint's answer is too large")
                finally:
                    await response.aclose()
        except TimeoutError:
            raise CredentialsError("the token endpoint did not answer in time") from None
        except TransportError as exc:
            raise CredentialsError(f"the token endpoint could not be reached ({exc})") from None
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise CredentialsError(f"the token endpoint answered HTTP {response.status_code}, not JSON")
        if response.status_code != 200:
            reason = answer.get("error")  # OAuth2's error code (invalid_grant, ...); never the key
            raise CredentialsError(
                f"the token endpoint refused the grant: HTTP {response.status_code} {str(reason)[:60]}"
            )
        value, lifetime = answer.get("access_token"), answer.get("expires_in")
        if not isinstance(value, str) or not value or not isinstance(lifetime, (int, float)) or lifetime <= 0:
            raise CredentialsError("the token endpoint's answer has no access_token or expires_in")
        self._token = _Token(
            value,
            stale_at=started + lifetime - min(300.0, lifetime / 4),
            expires_at=started + lifetime - min(30.0, lifetime / 10),
        )
        log.debug("vertex: access token for %s fetched, valid %ss", self.account.email, lifetime)
        return value

    async def aclose(self) -> None:
        task, self._fetch_task = self._fetch_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class VertexTransport:
    """The deployment's pool, with `authorization: Bearer <access token>` on every request.
    A 401 drops the token and the request is sent once more with a new one."""

    def __init__(self, deployment: Deployment, inner: UpstreamTransport) -> None:
        self.deployment = deployment
        self.inner = inner
        self._tokens: AccessTokens | None = None

    def _open(self) -> AccessTokens:
        account = load_service_account(self.deployment.credentials or "")
        self._tokens = AccessTokens(account, self.inner.send)
        return self._tokens

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        tokens, token = await self._token()
        response = await self._send(request, token)
        if response.status_code == 401:
            # Refused before any byte reached the client: revoked or expired early upstream.
            # Once with a fresh token; a second 401 is passed on.
            await response.aclose()
            tokens.invalidate(token)
            response = await self._send(request, (await self._token())[1])
        return response

    def _send(self, request: UpstreamRequest, token: str) -> Any:
        headers = {**request.headers, "authorization": f"Bearer {token}"}
        return self.inner.send(dataclasses.replace(request, headers=headers))

    async def _token(self) -> tuple[AccessTokens, str]:
        try:
            tokens = self._tokens or self._open()
            return tokens, await tokens.get()
        except CredentialsError as exc:
            log.warning("vertex deployment %s: no access token: %s", self.deployment.id, exc)
            raise UpstreamError(
                "The proxy could not authenticate to the upstream.",
                deployment=self.deployment.id,
                code="upstream_auth_failed",
            ) from None

    async def aclose(self) -> None:
        if self._tokens is not None:
            await self._tokens.aclose()
        await self.inner.aclose()


def vertex_transport(deployment: Deployment, inner: UpstreamTransport) -> UpstreamTransport:
    """The registry's wrapper: a token-fetching transport, unless `api_key` is the token."""
    return inner if deployment.api_key else VertexTransport(deployment, inner)


__all__ = [
    "AccessTokens",
    "CredentialsError",
    "ServiceAccount",
    "VertexTransport",
    "assertion",
    "load_service_account",
    "vertex_transport",
]
