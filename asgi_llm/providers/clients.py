"""Upstream HTTP clients: the one module that imports the HTTP client library.

The API is httpx2's; the transport under it is aiohttp's connection pool, measured faster
under concurrency (docs/performance.md). One pooled client per deployment, created on first
use and closed at shutdown; never one per request.
"""

from __future__ import annotations

import asyncio

import httpx2
from httpx_aiohttp.httpx2 import AiohttpTransport

from asgi_llm.config.schema import Deployment

Client = httpx2.AsyncClient
Request = httpx2.Request
Response = httpx2.Response
TransportError = httpx2.TransportError
AsyncByteStream = httpx2.AsyncByteStream
AsyncBaseTransport = httpx2.AsyncBaseTransport

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


class UpstreamClients:
    """One pooled transport per deployment, created on first use.

    Requests go to the transport directly, as httpx2 Requests and Responses: the client
    layer around it (auth flows, redirects, cookies, URL merging) is work an attempt does
    not need, measured at ~15% of the proxy's CPU (docs/performance.md).
    """

    def __init__(self, transport_factory: object = None) -> None:
        self._transports: dict[str, httpx2.AsyncBaseTransport] = {}
        self._timeouts: dict[str, dict[str, float | None]] = {}
        self._transport_factory = transport_factory

    def transport(self, deployment: Deployment) -> httpx2.AsyncBaseTransport:
        transport = self._transports.get(deployment.id)
        if transport is None:
            transport = self._transports[deployment.id] = self._make(deployment)
        return transport

    def request(self, deployment: Deployment, url: str, headers: dict[str, str], body: bytes) -> Request:
        timeout = self._timeouts.get(deployment.id)
        if timeout is None:
            # Read timeouts are ours (first byte, idle, total: ProviderApp); never httpx's
            # 5 s default on every phase.
            timeout = self._timeouts[deployment.id] = {
                "connect": deployment.connect_timeout_s, "read": None, "write": None, "pool": None}
        return httpx2.Request("POST", url, headers=headers, content=body,
                              extensions={"timeout": timeout})

    def _make(self, deployment: Deployment) -> httpx2.AsyncBaseTransport:
        if deployment.provider == "mock":
            from asgi_llm.providers.mock import MockTransport

            return MockTransport(deployment)
        if callable(self._transport_factory):
            return self._transport_factory(deployment)  # type: ignore[no-any-return]
        return AiohttpTransport(limits=POOL_LIMITS, trust_env=False)

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
