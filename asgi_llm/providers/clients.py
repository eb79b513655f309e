"""Upstream HTTP clients: the one module that imports the HTTP client libraries.

Attempts speak httpx2's vocabulary (Request, Response, transports, TransportError), so the
mock provider, tests and users plug in any httpx2 transport. The default transport is
aiohttp's connection pool driven directly: measured on this machine, httpx2's own pool falls
to ~0.4x of aiohttp's under concurrency, and even the httpx2 API over aiohttp
(httpx-aiohttp) costs 15-33% of throughput (docs/performance.md). One pool per deployment,
created on first use and closed at shutdown or when a reload removes the deployment.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx2
from httpx_aiohttp.httpx2 import AiohttpTransport

from asgi_llm.config.schema import Deployment

Client = httpx2.AsyncClient
Request = httpx2.Request
Response = httpx2.Response
TransportError = httpx2.TransportError
AsyncByteStream = httpx2.AsyncByteStream
AsyncBaseTransport = httpx2.AsyncBaseTransport

READ_CHUNK = 64 * 1024  # upstream bytes handed on at a time (THREATS U7: memory per slow stream)
POOL_LIMITS = httpx2.Limits(max_connections=1024, max_keepalive_connections=256, keepalive_expiry=30)


def is_timeout(exc: BaseException) -> bool:
    """aiohttp maps some disconnects to httpx2's ConnectTimeout: judge by the real cause."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, httpx2.TimeoutException):
        return cause is None or isinstance(cause, (asyncio.TimeoutError, TimeoutError))
    return isinstance(exc, (asyncio.TimeoutError, TimeoutError))


def make_client(*, connect_timeout: float = 5.0, timeout: float = 10.0) -> httpx2.AsyncClient:
    """A general-purpose client (JWKS, token introspection): every phase bounded."""
    return httpx2.AsyncClient(
        transport=AiohttpTransport(limits=POOL_LIMITS, trust_env=False),
        timeout=httpx2.Timeout(timeout, connect=connect_timeout),
        follow_redirects=False,
        trust_env=False,
    )


class DirectResponse:
    """The part of an httpx2.Response an attempt uses, read straight from aiohttp."""

    __slots__ = ("status_code", "headers", "_response")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.status_code = response.status
        self.headers = response.headers  # case-insensitive `.get`, like httpx2.Headers
        self._response = response

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        # What is buffered, but at most READ_CHUNK at a time: `iter_any()` joins everything
        # aiohttp holds (seen near 1 MB with a fast upstream and a slow client), and each
        # piece is copied twice more (SSE adapter, HTTP framing) while the client drains it.
        try:
            async for chunk in self._response.content.iter_chunked(READ_CHUNK):
                yield chunk
        except (aiohttp.ClientError, OSError) as exc:
            raise httpx2.ReadError(f"upstream read failed: {exc.__class__.__name__}") from exc

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()  # whole body read: the connection goes back to the pool
        else:
            self._response.close()  # cut, cancelled or abandoned: the connection is closed


class DirectTransport:
    """aiohttp's pool for one deployment. No cookie jar (an upstream's cookies must never
    reach another tenant's request), no redirects, no proxies from the environment."""

    def __init__(self, connect_timeout: float) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, connect=None, sock_read=None
        )
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=POOL_LIMITS.max_connections or 0,
            keepalive_timeout=POOL_LIMITS.keepalive_expiry or 30,
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            skip_auto_headers=("User-Agent",),
        )
        return self._session

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> DirectResponse:
        session = self._session or self._open()
        try:
            response = await session.request(
                "POST", url, data=body, headers=headers, allow_redirects=False, timeout=self._timeout
            )
        except TimeoutError as exc:  # aiohttp's connect timeouts are asyncio.TimeoutError
            raise httpx2.ConnectTimeout("upstream connect timed out") from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx2.ConnectError(f"upstream connect failed: {exc.__class__.__name__}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise httpx2.ReadError(f"upstream request failed: {exc.__class__.__name__}") from exc
        return DirectResponse(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class UpstreamClients:
    """One pooled transport per deployment, created on first use.

    The default is `DirectTransport`; `transport_factory(deployment)` (and the mock provider)
    may give an httpx2 transport instead, which then gets httpx2 Requests.
    """

    def __init__(self, transport_factory: object = None) -> None:
        self._transports: dict[str, Any] = {}
        self._timeouts: dict[str, dict[str, float | None]] = {}
        self._transport_factory = transport_factory

    def transport(self, deployment: Deployment) -> Any:
        transport = self._transports.get(deployment.id)
        if transport is None:
            transport = self._transports[deployment.id] = self._make(deployment)
        return transport

    async def send(self, deployment: Deployment, url: str, headers: dict[str, str], body: bytes) -> Any:
        """One upstream request; the response has status_code, headers, aiter_bytes, aclose."""
        transport = self.transport(deployment)
        if isinstance(transport, DirectTransport):
            return await transport.send(url, headers, body)
        return await transport.handle_async_request(self.request(deployment, url, headers, body))

    def request(self, deployment: Deployment, url: str, headers: dict[str, str], body: bytes) -> Request:
        timeout = self._timeouts.get(deployment.id)
        if timeout is None:
            # Read timeouts are ours (first byte, idle, total: ProviderApp); never httpx's
            # 5 s default on every phase.
            timeout = self._timeouts[deployment.id] = {
                "connect": deployment.connect_timeout_s,
                "read": None,
                "write": None,
                "pool": None,
            }
        return httpx2.Request("POST", url, headers=headers, content=body, extensions={"timeout": timeout})

    def _make(self, deployment: Deployment) -> Any:
        if deployment.provider == "mock":
            from asgi_llm.providers.mock import MockTransport

            return MockTransport(deployment)
        if callable(self._transport_factory):
            return self._transport_factory(deployment)
        return DirectTransport(deployment.connect_timeout_s)

    async def close(self, deployment_id: str) -> None:
        """Close one deployment's pool (it was removed from the config)."""
        transport = self._transports.pop(deployment_id, None)
        self._timeouts.pop(deployment_id, None)
        if transport is not None:
            await transport.aclose()

    async def aclose(self) -> None:
        transports, self._transports = self._transports, {}
        for transport in transports.values():
            await transport.aclose()
