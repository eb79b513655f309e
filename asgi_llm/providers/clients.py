"""Upstream HTTP clients: the one module that imports the HTTP client libraries.

The default transport is aiohttp's connection pool driven directly: measured on this
machine, httpx2's own pool falls to ~0.4x of aiohttp's under concurrency, and even the httpx2
API over aiohttp (httpx-aiohttp) costs 15-33% of throughput (docs/performance.md). Any httpx2
transport (a user's `transport_factory`, `httpx2.MockTransport` in tests) is adapted once,
when its pool is made. One pool per deployment, created on first use and closed at shutdown
or when a reload removes the deployment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import httpx2
from httpx_aiohttp.httpx2 import AiohttpTransport

from asgi_llm.config.schema import Deployment
from asgi_llm.providers.registry import entry_for
from asgi_llm.providers.transport import (
    TransportError,
    TransportTimeout,
    UpstreamRequest,
    UpstreamTransport,
)

Client = httpx2.AsyncClient
# What `transport_factory(deployment)` may return: ours, or any httpx2 transport.
TransportFactory = Callable[[Deployment], "UpstreamTransport | httpx2.AsyncBaseTransport"]

READ_CHUNK = 64 * 1024  # upstream bytes handed on at a time (THREATS U7: memory per slow stream)
POOL_LIMITS = httpx2.Limits(max_connections=1024, max_keepalive_connections=256, keepalive_expiry=30)


def make_client(*, connect_timeout: float = 5.0, timeout: float = 10.0) -> httpx2.AsyncClient:
    """A general-purpose client (JWKS, token introspection): every phase bounded."""
    return httpx2.AsyncClient(
        transport=AiohttpTransport(limits=POOL_LIMITS, trust_env=False),
        timeout=httpx2.Timeout(timeout, connect=connect_timeout),
        follow_redirects=False,
        trust_env=False,
    )


class DirectResponse:
    """An aiohttp response as an `UpstreamResponse`."""

    __slots__ = ("status_code", "headers", "_response")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.status_code = response.status
        self.headers = response.headers  # a CIMultiDictProxy: case-insensitive `.get`
        self._response = response

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        # What is buffered, but at most READ_CHUNK at a time: `iter_any()` joins everything
        # aiohttp holds (seen near 1 MB with a fast upstream and a slow client), and each
        # piece is copied twice more (SSE adapter, HTTP framing) while the client drains it.
        try:
            async for chunk in self._response.content.iter_chunked(READ_CHUNK):
                yield chunk
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"upstream read failed: {exc.__class__.__name__}") from exc

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()  # whole body read: the connection goes back to the pool
        else:
            self._response.close()  # cut, cancelled or abandoned: the connection is closed


class DirectTransport:
    """aiohttp's pool for one deployment. No cookie jar (an upstream's cookies must never
    reach another tenant's request), no redirects, no proxies from the environment."""

    def __init__(self, connect_timeout_s: float) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, connect=None, sock_read=None
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

    async def send(self, request: UpstreamRequest) -> DirectResponse:
        session = self._session or self._open()
        try:
            response = await session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                allow_redirects=False,
                timeout=self._timeout,
            )
        except TimeoutError as exc:  # aiohttp's connect timeouts are asyncio.TimeoutError
            raise TransportTimeout("upstream connect timed out") from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransportError(f"upstream connect failed: {exc.__class__.__name__}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"upstream request failed: {exc.__class__.__name__}") from exc
        return DirectResponse(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _transport_error(exc: httpx2.TransportError) -> TransportError:
    # httpx-aiohttp maps some disconnects to httpx2's ConnectTimeout: judge by the real cause.
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, httpx2.TimeoutException) and (cause is None or isinstance(cause, TimeoutError)):
        return TransportTimeout(f"upstream timed out: {exc.__class__.__name__}")
    return TransportError(f"upstream transport failed: {exc.__class__.__name__}")


class Httpx2Response:
    """An httpx2 response as an `UpstreamResponse` (its read errors become ours)."""

    __slots__ = ("status_code", "headers", "_response")

    def __init__(self, response: httpx2.Response) -> None:
        self.status_code = response.status_code
        self.headers = response.headers
        self._response = response

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx2.TransportError as exc:
            raise _transport_error(exc) from exc

    async def aclose(self) -> None:
        await self._response.aclose()


class Httpx2Transport:
    """Any httpx2 transport as an `UpstreamTransport`."""

    __slots__ = ("transport", "_extensions")

    def __init__(self, transport: httpx2.AsyncBaseTransport, *, connect_timeout_s: float) -> None:
        self.transport = transport
        # Read timeouts are ours (first byte, idle, total: ProviderApp); never httpx's 5 s
        # default on every phase. httpx2.Request copies the mapping, so one serves all.
        timeout = {"connect": connect_timeout_s, "read": None, "write": None, "pool": None}
        self._extensions: dict[str, Any] = {"timeout": timeout}

    async def send(self, request: UpstreamRequest) -> Httpx2Response:
        outgoing = httpx2.Request(
            request.method,
            request.url,
            headers=request.headers,
            content=request.body,
            extensions=self._extensions,
        )
        try:
            return Httpx2Response(await self.transport.handle_async_request(outgoing))
        except httpx2.TransportError as exc:
            raise _transport_error(exc) from exc

    async def aclose(self) -> None:
        await self.transport.aclose()


def upstream_transport(
    transport: UpstreamTransport | httpx2.AsyncBaseTransport, deployment: Deployment
) -> UpstreamTransport:
    """What a `transport_factory` gave, as an `UpstreamTransport` (adapted if httpx2's)."""
    if isinstance(transport, httpx2.AsyncBaseTransport):
        return Httpx2Transport(transport, connect_timeout_s=deployment.connect_timeout_s)
    # A client has `send` and `aclose` too, but sends httpx2 Requests: a common slip.
    usable = callable(getattr(transport, "send", None)) and callable(getattr(transport, "aclose", None))
    if not usable or isinstance(transport, httpx2.AsyncClient):
        raise TypeError(
            f"transport_factory gave {type(transport).__name__} for deployment {deployment.id!r}: "
            "expected an httpx2 transport or an UpstreamTransport (send, aclose)"
        )
    return transport


class UpstreamClients:
    """One pooled transport per deployment, created on first use.

    The transport is the provider's own when its registry entry has one (the mock), else
    what `transport_factory(deployment)` gives, else a `DirectTransport`; wrapped by the
    entry's `wrap` when it has one (Vertex AI's access tokens).
    """

    def __init__(self, transport_factory: TransportFactory | None = None) -> None:
        self._transports: dict[str, UpstreamTransport] = {}
        self._transport_factory = transport_factory

    def transport(self, deployment: Deployment) -> UpstreamTransport:
        transport = self._transports.get(deployment.id)
        if transport is None:
            transport = self._transports[deployment.id] = self._make(deployment)
        return transport

    def _make(self, deployment: Deployment) -> UpstreamTransport:
        entry = entry_for(deployment.provider)
        if entry.transport is not None:
            return entry.transport(deployment)
        pool: UpstreamTransport
        if self._transport_factory is not None:
            pool = upstream_transport(self._transport_factory(deployment), deployment)
        else:
            pool = DirectTransport(deployment.connect_timeout_s)
        return entry.wrap(deployment, pool) if entry.wrap is not None else pool

    async def close(self, deployment_id: str) -> None:
        """Close one deployment's pool (it was removed from the config)."""
        transport = self._transports.pop(deployment_id, None)
        if transport is not None:
            await transport.aclose()

    async def aclose(self) -> None:
        transports, self._transports = self._transports, {}
        for transport in transports.values():
            await transport.aclose()


__all__ = [
    "DirectTransport",
    "Httpx2Transport",
    "TransportError",
    "TransportFactory",
    "TransportTimeout",
    "UpstreamClients",
    "make_client",
    "upstream_transport",
]
