"""ProviderApp and the router under network and protocol faults (THREATS U3, U8, U9, U12)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import assert_error_shape
from tests.fakes.faultproxy import FaultProxy
from tests.fakes.upstream import Behavior, FakeUpstream

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def up():
    with FakeUpstream("faulty") as server:
        yield server


@pytest.fixture
def fp(up):
    up.reset()
    up.default = Behavior()
    with FaultProxy(("127.0.0.1", int(up.root_url.rsplit(":", 1)[1]))) as proxy:
        yield proxy


def via(fp, name="via-fp", **extra):
    return {
        "id": name,
        "provider": "openai-compatible",
        "model": "m",
        "base_url": f"http://127.0.0.1:{fp.port}/v1",
        "api_key": "sk-upstream-secret-0",
        **extra,
    }


def direct(up, name="direct"):
    return {
        "id": name,
        "provider": "openai-compatible",
        "model": "m",
        "base_url": up.base_url,
        "api_key": "sk-upstream-secret-1",
    }


async def stream(client, model="m"):
    response = await client.post(
        "/v1/chat/completions", json={"model": model, "messages": USER, "stream": True}
    )
    return response, response.text


async def test_one_byte_segments_reassemble_exactly(asgi_client, up, fp):
    up.default = Behavior(chunks=5)
    client = asgi_client(
        {"models": [{"name": "m", "deployments": [via(fp)]}, {"name": "d", "deployments": [direct(up)]}]}
    )
    fp.set(slice_bytes=1, slice_delay_ms=0)
    _, sliced = await stream(client)
    fp.clear()
    _, whole = await stream(client, "d")
    strip = lambda text: [line.split('"created"')[0] for line in text.split("\n\n")]  # noqa: E731
    assert strip(sliced.replace("faulty-1", "X").replace("faulty-2", "X")) == strip(
        whole.replace("faulty-1", "X").replace("faulty-2", "X")
    )
    assert sliced.rstrip().endswith("data: [DONE]")


@pytest.mark.parametrize("fault", [{"limit_bytes": 900}, {"reset_after_bytes": 900}])
async def test_cut_stream_ends_with_an_error_event_and_no_done(asgi_client, up, fp, fault):
    up.default = Behavior(chunks=20, chunk_delay_s=0.01)
    client = asgi_client({"models": [{"name": "m", "deployments": [via(fp)]}]})
    fp.set(**fault)
    response, text = await stream(client)
    assert response.status_code == 200
    assert '"code":"stream_interrupted"' in text
    assert "[DONE]" not in text


async def test_refused_connection_fails_over_fast(asgi_client, up, fp):
    client = asgi_client({"models": [{"name": "m", "deployments": [via(fp), direct(up)]}]})
    fp.down()
    started = time.monotonic()
    response = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
    assert response.status_code == 200
    assert response.headers["x-llm-deployment"] == "direct"
    assert time.monotonic() - started < 0.5


async def test_every_connection_refused_is_a_502(asgi_client, fp):
    client = asgi_client({"models": [{"name": "m", "deployments": [via(fp)]}]})
    fp.down()
    response = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
    error = assert_error_shape(response, 502)
    assert error["code"] == "upstream_connection_error"
    assert "127.0.0.1" not in error["message"]  # no upstream URL in errors


async def test_blackholed_upstream_is_a_first_token_timeout(asgi_client, fp):
    client = asgi_client(
        {
            "models": [{"name": "m", "deployments": [via(fp, first_byte_timeout_s=0.3)]}],
            "routing": {"retries": 0},
        }
    )
    fp.set(blackhole=True)
    started = time.monotonic()
    response = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
    assert_error_shape(response, 504, "first_token_timeout")
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "text/html"),
        (b'{"no": "choices"}', "application/json"),
        (b"\x00\xff garbage", "application/json"),
    ],
)
async def test_malformed_success_bodies_are_502(asgi_client, up, body, content_type):
    up.reset()
    up.default = Behavior(body=body, content_type=content_type)
    client = asgi_client({"models": [{"name": "m", "deployments": [direct(up)]}], "routing": {"retries": 0}})
    response = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
    assert_error_shape(response, 502, "bad_upstream_response")
    assert "502 Bad Gateway" not in response.text  # no raw provider body


async def test_html_answer_to_a_stream_request_is_502(asgi_client, up):
    up.reset()
    up.default = Behavior(body=b"<html>oops</html>", content_type="text/html")
    client = asgi_client({"models": [{"name": "m", "deployments": [direct(up)]}], "routing": {"retries": 0}})
    response, _ = await stream(client)
    assert_error_shape(response, 502, "bad_upstream_response")


SSE_VARIANTS = [
    b'data: {"id":"1","object":"chat.completion.chunk",'
    b'"choices":[{"index":0,"delta":{"content":"a"}}]}\r\n\r\n'
    b"data: [DONE]\r\n\r\n",
    b': comment\n\ndata:{"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":'
    b'{"content":"a"}}]}\n\nevent: ping\n\ndata: [DONE]\n\n',
]


@pytest.mark.parametrize("raw", SSE_VARIANTS)
async def test_valid_sse_variants_are_relayed(asgi_client, up, raw):
    up.reset()
    up.default = Behavior(body=raw, content_type="text/event-stream")
    client = asgi_client({"models": [{"name": "m", "deployments": [direct(up)]}]})
    response, text = await stream(client)
    assert response.status_code == 200
    assert '"content":"a"' in text and text.rstrip().endswith("data: [DONE]")
    assert "comment" not in text and "ping" not in text


async def test_stream_without_done_ends_with_an_error_event(asgi_client, up):
    up.reset()
    up.default = Behavior(body=SSE_VARIANTS[0].split(b"data: [DONE]")[0], content_type="text/event-stream")
    client = asgi_client({"models": [{"name": "m", "deployments": [direct(up)]}]})
    response, text = await stream(client)
    assert '"code":"stream_interrupted"' in text and "[DONE]" not in text


async def test_upstream_error_text_echoing_the_provider_key_is_scrubbed(asgi_client, up):
    up.reset()
    up.default = Behavior(
        status=401,
        error_message="Incorrect API key provided: sk-upstream-secret-1. Also sk-proj-abcdef123456 is wrong",
    )
    client = asgi_client({"models": [{"name": "m", "deployments": [direct(up)]}]})
    response = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
    assert_error_shape(response, 502, "upstream_auth_failed")  # the proxy's key, not the client's
    assert "sk-upstream-secret-1" not in response.text and "abcdef123456" not in response.text
    assert "Incorrect API key provided" in response.text


async def test_upstream_redirect_is_not_followed(asgi_client, up):
    up.reset()
    up.default = Behavior(status=302, headers={"location": "http://127.0.0.1:1/steal"})
    client = asgi_client({"models": [{"name": "m", "deployments": [direct(up)]}], "routing": {"retries": 0}})
    response = await client.post("/v1/chat/completions", json={"model": "m", "messages": USER})
    error = assert_error_shape(response, 502, "bad_upstream_response")
    assert "redirect" in error["message"]
    assert len(up.requests) == 1
