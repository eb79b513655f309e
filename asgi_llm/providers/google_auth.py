"""Vertex AI's access tokens, from a credentials file's grant (google_credentials.py: a
service account's signed JWT, or a user's refresh token), and the transport that puts one on
every request. The grant goes to the file's `token_uri`, through the deployment's own pool.

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

from asgi_llm.config.schema import Deployment
from asgi_llm.errors import UpstreamError
from asgi_llm.providers.google_credentials import (
    CredentialsError,
    GoogleCredentials,
    ServiceAccount,
    assertion,
    load_credentials,
    load_service_account,
)
from asgi_llm.providers.transport import (
    TransportError,
    UpstreamRequest,
    UpstreamResponse,
    UpstreamTransport,
)

log = logging.getLogger("asgi_llm.providers")

FETCH_TIMEOUT_S = 30.0
RETRY_AFTER_FAILURE_S = 5.0  # a failed background refresh is not retried on every request
MAX_TOKEN_ANSWER = 64 * 1024


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
        account: GoogleCredentials,
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
                self.account.label,
                task.exception(),
            )

    async def _grant(self) -> str:
        started = self._clock()
        form = urlencode(self.account.form(self._wall()))
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
        log.debug("vertex: access token for %s fetched, valid %ss", self.account.label, lifetime)
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
        account = load_credentials(self.deployment.credentials or "")
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
        quota = self._tokens.account.quota_project if self._tokens is not None else None
        if quota:  # a user's credentials name the project their calls are billed to
            headers["x-goog-user-project"] = quota
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
    "load_credentials",
    "load_service_account",
    "vertex_transport",
]
