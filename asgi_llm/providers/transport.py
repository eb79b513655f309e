"""The upstream transport seam: one request in, one streamed response out, and `aclose()`.

Nothing here imports an HTTP library. `clients.py` holds the implementations (aiohttp's
pool driven directly, and an adapter for any httpx2 transport); the mock provider and a
provider with its own networking (a signing or token-refreshing transport) implement
`UpstreamTransport` themselves and are named in the provider registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One request to an upstream, as a provider's wire format writes it. Timeouts are not
    here: a transport serves one deployment and takes its connect timeout when made; the
    first-byte, idle and total limits are ProviderApp's."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


class ResponseHeaders(Protocol):
    def get(self, key: str, /) -> str | None:
        """A header's value, the name in any case; None when absent."""
        ...


class UpstreamResponse(Protocol):
    """What an attempt reads: the status and headers as soon as they arrive, then the body."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> ResponseHeaders: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises `TransportError` when the read fails."""
        ...

    async def aclose(self) -> None:
        """Release the connection (read whole) or close it (cut short); always called."""
        ...


class UpstreamTransport(Protocol):
    """One deployment's way to its upstream (a pool, a mock): `send` once per attempt."""

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send the request; return once the status and headers are in. Raises
        `TransportError` (`TransportTimeout` for a connect timeout) when there is no answer."""
        ...

    async def aclose(self) -> None:
        """Close every connection (shutdown, or the deployment left the config)."""
        ...


class TransportError(Exception):
    """No HTTP answer: the upstream could not be reached, or its body could not be read."""


class TransportTimeout(TransportError):
    """The connection to the upstream was not made in time."""


__all__ = [
    "ResponseHeaders",
    "TransportError",
    "TransportTimeout",
    "UpstreamRequest",
    "UpstreamResponse",
    "UpstreamTransport",
]
