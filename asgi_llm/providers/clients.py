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
    """A lazily filled pool of clients keyed by deployment id."""

    def __init__(self, transport_factory: object = None) -> None:
        self._clients: dict[str, httpx2.AsyncClient] = {}
        self._transport_factory = transport_factory

    def get(self, deployment: Deployment) -> httpx2.AsyncClient:
        client = self._clients.get(deployment.id)
        if client is None:
            client = self._clients[deployment.id] = self._make(deployment)
        return client

    def _make(self, deployment: Deployment) -> httpx2.AsyncClient:
        transport: httpx2.AsyncBaseTransport
        if deployment.provider == "mock":
            from asgi_llm.providers.mock import MockTransport

            transport = MockTransport(deployment)
        elif callable(self._transport_factory):
            transport = self._transport_factory(deployment)
        else:
            transport = AiohttpTransport(limits=POOL_LIMITS, trust_env=False)
        # Read timeouts are ours (first byte, idle, total: see ProviderApp); never httpx's
        # 5 s default on every phase.
        timeout = httpx2.Timeout(connect=deployment.connect_timeout_s, read=None, write=None,
                                 pool=None)
        return httpx2.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False,
                                  trust_env=False)

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()
