"""The upstream pools (asgi_llm/providers/clients.py): one transport per deployment, made
once (the registry's, a user's factory adapted, or aiohttp's pool), closed on demand."""

from __future__ import annotations

import socket
from typing import Any

import httpx2
import pytest

from asgi_llm.config.schema import Deployment
from asgi_llm.providers.clients import DirectTransport, Httpx2Transport, UpstreamClients
from asgi_llm.providers.mock import MockTransport
from asgi_llm.providers.transport import TransportError, TransportTimeout, UpstreamRequest
from tests.fakes.upstream import Behavior, FakeUpstream

CHAT = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'


def deployment(id: str = "d", provider: str = "openai-compatible", **fields: Any) -> Deployment:
    return Deployment(id=id, provider=provider, model="m", base_url="http://127.0.0.1:9", **fields)


def post(url: str, body: bytes = CHAT) -> UpstreamRequest:
    return UpstreamRequest("POST", url, {"content-type": "application/json", "x-key": "k"}, body)


async def read(response: Any) -> bytes:
    try:
        return b"".join([chunk async for chunk in response.aiter_bytes()])
    finally:
        await response.aclose()


class Recording:
    """An UpstreamTransport of our own that counts its closes."""

    def __init__(self) -> None:
        self.closed = 0

    async def send(self, request: UpstreamRequest) -> Any:
        raise AssertionError("not sent in these tests")

    async def aclose(self) -> None:
        self.closed += 1


# -- adapting an httpx2 transport -----------------------------------------------------------
async def test_an_httpx2_transport_is_adapted_once_and_sees_the_whole_request():
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, headers={"Content-Type": "text/plain"}, content=b"pong")

    made: list[Deployment] = []

    def factory(d: Deployment) -> httpx2.AsyncBaseTransport:
        made.append(d)
        return httpx2.MockTransport(handler)

    clients = UpstreamClients(factory)
    d = deployment(connect_timeout_s=2.5)
    transport = clients.transport(d)
    assert isinstance(transport, Httpx2Transport)
    response = await transport.send(post("http://up.test/v1/chat/completions"))
    assert response.status_code == 200
    assert response.headers.get("content-type") == "text/plain"  # any case
    assert await read(response) == b"pong"
    await clients.transport(d).send(post("http://up.test/v1/embeddings"))
    assert made == [d]  # one transport per deployment, made on first use
    first = seen[0]
    assert (first.method, str(first.url), first.content) == (
        "POST",
        "http://up.test/v1/chat/completions",
        CHAT,
    )
    assert first.headers["x-key"] == "k"
    # Only the connect phase is bounded by the transport; read limits are ProviderApp's.
    assert first.extensions["timeout"] == {"connect": 2.5, "read": None, "write": None, "pool": None}
    await clients.aclose()


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx2.ConnectError("refused"), TransportError),
        (httpx2.ConnectTimeout("slow"), TransportTimeout),
        (httpx2.ReadError("reset"), TransportError),
    ],
)
async def test_httpx2_errors_become_transport_errors(raised, expected):
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise raised

    transport = Httpx2Transport(httpx2.MockTransport(handler), connect_timeout_s=1.0)
    with pytest.raises(TransportError) as caught:
        await transport.send(post("http://up.test/x"))
    assert type(caught.value) is expected
    assert caught.value.__cause__ is raised


async def test_a_timeout_caused_by_a_disconnect_is_not_a_timeout():
    # httpx-aiohttp reports some dropped connections as ConnectTimeout: the cause decides.
    def handler(request: httpx2.Request) -> httpx2.Response:
        try:
            raise ConnectionResetError("peer reset")
        except ConnectionResetError as exc:
            raise httpx2.ConnectTimeout("reported as a timeout") from exc

    transport = Httpx2Transport(httpx2.MockTransport(handler), connect_timeout_s=1.0)
    with pytest.raises(TransportError) as caught:
        await transport.send(post("http://up.test/x"))
    assert type(caught.value) is TransportError


async def test_a_read_error_mid_body_becomes_a_transport_error():
    class Broken(httpx2.AsyncByteStream):
        async def __aiter__(self):
            yield b"data: {}\n\n"
            raise httpx2.ReadError("connection reset")

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=Broken())

    transport = Httpx2Transport(httpx2.MockTransport(handler), connect_timeout_s=1.0)
    response = await transport.send(post("http://up.test/x"))
    chunks = []
    with pytest.raises(TransportError):
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
    assert chunks == [b"data: {}\n\n"]
    await response.aclose()


async def test_a_factory_may_give_an_upstream_transport_which_is_used_as_is():
    own = Recording()
    clients = UpstreamClients(lambda d: own)
    assert clients.transport(deployment()) is own
    await clients.aclose()
    assert own.closed == 1


async def test_a_factory_giving_something_else_fails_naming_the_deployment():
    async with httpx2.AsyncClient() as client:  # a client, not a transport: a common slip
        for wrong in (client, object()):
            clients = UpstreamClients(lambda d, wrong=wrong: wrong)
            with pytest.raises(TypeError, match="deployment 'd'.*httpx2 transport or an UpstreamTransport"):
                clients.transport(deployment())


# -- which transport, per deployment --------------------------------------------------------
def test_without_a_factory_each_deployment_gets_its_own_direct_pool():
    clients = UpstreamClients()
    a, b = deployment("a"), deployment("b")
    assert isinstance(clients.transport(a), DirectTransport)
    assert clients.transport(a) is clients.transport(a)
    assert clients.transport(a) is not clients.transport(b)


def test_the_registrys_transport_wins_over_the_factory():
    called: list[str] = []

    def factory(d: Deployment) -> Recording:
        called.append(d.id)
        return Recording()

    clients = UpstreamClients(factory)
    mock = Deployment(id="mock-1", provider="mock", model="mock-1")
    assert isinstance(clients.transport(mock), MockTransport)
    assert called == []  # a mock deployment never reaches the user's networking
    clients.transport(deployment("real"))
    assert called == ["real"]


async def test_close_ends_one_pool_and_the_next_use_makes_a_fresh_one():
    made: list[Recording] = []

    def factory(d: Deployment) -> Recording:
        made.append(Recording())
        return made[-1]

    clients = UpstreamClients(factory)
    a, b = deployment("a"), deployment("b")
    first_a, first_b = clients.transport(a), clients.transport(b)
    await clients.close("a")
    await clients.close("never-made")  # nothing to close: no error
    assert (made[0].closed, made[1].closed) == (1, 0)
    assert clients.transport(a) is not first_a
    assert clients.transport(b) is first_b
    await clients.aclose()
    assert [t.closed for t in made] == [1, 1, 1]
    assert clients.transport(b) is not first_b  # after aclose, pools are made again on use
    await clients.aclose()


# -- aiohttp's pool, against a real server --------------------------------------------------
async def test_direct_transport_sends_and_reads_a_real_answer():
    with FakeUpstream("direct") as up:
        up.default = Behavior(headers={"X-Upstream": "yes"})
        transport = DirectTransport(connect_timeout_s=2.0)
        response = await transport.send(post(up.base_url + "/chat/completions"))
        assert response.status_code == 200
        assert response.headers.get("x-upstream") == "yes"
        assert b'"choices"' in await read(response)
        recorded = up.requests[0]
        assert (recorded.method, recorded.path, recorded.body) == ("POST", "/v1/chat/completions", CHAT)
        assert recorded.headers["x-key"] == "k"
        assert "user-agent" not in recorded.headers  # aiohttp's own is not added
        await transport.aclose()


async def test_direct_transport_refused_connection_is_a_transport_error_not_a_timeout():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = DirectTransport(connect_timeout_s=2.0)
    with pytest.raises(TransportError) as caught:
        await transport.send(post(f"http://127.0.0.1:{port}/v1/chat/completions"))
    assert type(caught.value) is TransportError
    await transport.aclose()
