"""Tests of the fake upstream itself, so that proxy tests can trust it."""

from __future__ import annotations

import base64
import struct
import threading
import time
from collections.abc import Iterator

import aiohttp
import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from .upstream import Behavior, FakeUpstream

CHAT: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hi you"},
]


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream("fake") as server:
        yield server


@pytest.fixture
def client(up: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=up.base_url, api_key="x", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(trust_env=False, timeout=5.0) as c:
        yield c


def test_chat_non_stream(up: FakeUpstream, client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="gpt-x", messages=CHAT)
    assert (r.object, r.model, r.id) == ("chat.completion", "gpt-x", "chatcmpl-fake-1")
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == "tok0 tok1 tok2 "
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (4, 3)
    assert r.usage.total_tokens == 7
    [rec] = up.requests
    assert (rec.method, rec.path, rec.query) == ("POST", "/v1/chat/completions", "")
    assert rec.headers["authorization"] == "Bearer x"
    assert rec.json["model"] == "gpt-x"
    assert rec.json["messages"] == CHAT
    assert rec.finished_at is not None and rec.finished_at >= rec.received_at
    assert rec.disconnected_at is None


def test_chat_stream_with_usage(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.script(Behavior(chunks=4))
    chunks = list(
        client.chat.completions.create(
            model="m",
            messages=CHAT,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "tok0 tok1 tok2 tok3 "
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    assert chunks[-1].usage.prompt_tokens == 4
    assert all(c.object == "chat.completion.chunk" for c in chunks)


def test_chat_stream_without_usage(up: FakeUpstream, http: httpx2.Client) -> None:
    body = {"model": "m", "messages": CHAT, "stream": True}
    r = http.post(f"{up.base_url}/chat/completions", json=body)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream"
    events = r.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert len(events) == 3 + 1 + 2  # content chunks, final chunk, [DONE], ""
    assert '"usage"' not in r.text


def test_usage_false_omits_usage_chunk(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.script(Behavior(usage=False))
    stream = client.chat.completions.create(
        model="m",
        messages=CHAT,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert len(chunks) == 4
    assert all(c.choices and c.usage is None for c in chunks)


def test_stream_chunks_are_flushed_one_by_one(up: FakeUpstream, http: httpx2.Client) -> None:
    up.script(Behavior(chunks=3, chunk_delay_s=0.2))
    body = {"model": "m", "messages": CHAT, "stream": True}
    arrivals = []
    with http.stream("POST", f"{up.base_url}/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                arrivals.append(time.monotonic())
    assert arrivals[1] - arrivals[0] >= 0.15
    assert arrivals[2] - arrivals[0] >= 0.35


def test_scripted_errors_then_default(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.script(
        Behavior(status=429, headers={"Retry-After": "2"}, error_message="slow down"),
        Behavior(status=503),
    )
    with pytest.raises(openai.RateLimitError) as rate_limited:
        client.chat.completions.create(model="m", messages=CHAT)
    assert rate_limited.value.response.headers["retry-after"] == "2"
    assert rate_limited.value.body == {
        "message": "slow down",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    with pytest.raises(openai.InternalServerError) as unavailable:
        client.embeddings.create(model="e", input="x")
    assert unavailable.value.status_code == 503
    up.default = Behavior(chunks=1)
    r = client.chat.completions.create(model="m", messages=CHAT)
    assert r.choices[0].message.content == "tok0 "


def test_raw_body_override(up: FakeUpstream, http: httpx2.Client) -> None:
    html = b"<html><body>502 Bad Gateway</body></html>"
    up.script(Behavior(status=502, body=html, content_type="text/html"))
    r = http.post(f"{up.base_url}/chat/completions", json={"model": "m"})
    assert (r.status_code, r.content) == (502, html)
    assert r.headers["content-type"] == "text/html"
    up.script(Behavior(body=b'{"choices": [', headers={"set-cookie": "a=b"}))
    r = http.post(f"{up.base_url}/completions", json={"model": "m"})
    assert (r.status_code, r.content) == (200, b'{"choices": [')
    assert r.headers["set-cookie"] == "a=b"


def test_delay_and_client_timeout_records_disconnect(up: FakeUpstream) -> None:
    up.script(Behavior(delay_s=5))
    with (
        httpx2.Client(trust_env=False, timeout=0.3) as http,
        pytest.raises(httpx2.ReadTimeout),
    ):
        http.post(f"{up.base_url}/chat/completions", json={"model": "m"})
    gave_up = time.monotonic()
    rec = up.wait_for_disconnect(timeout=2)
    assert rec is up.requests[0]
    assert rec.disconnected_at is not None
    assert rec.disconnected_at - gave_up < 1.0
    assert rec.disconnected_at - rec.received_at < 1.3
    assert rec.finished_at is None


def test_wait_for_disconnect_times_out(up: FakeUpstream, http: httpx2.Client) -> None:
    http.post(f"{up.base_url}/chat/completions", json={"model": "m"})
    started = time.monotonic()
    assert up.wait_for_disconnect(timeout=0.2) is None
    assert time.monotonic() - started >= 0.2


def test_client_leaving_mid_stream_is_recorded(up: FakeUpstream, http: httpx2.Client) -> None:
    up.script(Behavior(chunks=100, chunk_delay_s=0.05))
    body = {"model": "m", "messages": CHAT, "stream": True}
    with http.stream("POST", f"{up.base_url}/chat/completions", json=body) as r:
        next(r.iter_lines())
    rec = up.wait_for_disconnect(timeout=2)
    assert rec is not None and rec.finished_at is None


def test_cut_after_makes_sdk_stream_raise(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.script(Behavior(chunks=5, cut_after=2))
    seen = []
    with pytest.raises(openai.APIConnectionError):
        stream = client.chat.completions.create(
            model="m",
            messages=CHAT,
            stream=True,
        )
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content)
    assert seen == ["tok0 ", "tok1 "]
    [rec] = up.requests
    assert rec.finished_at is not None and rec.disconnected_at is None


async def test_cut_after_is_a_protocol_error_for_async_clients(
    up: FakeUpstream,
) -> None:
    body = {"model": "m", "prompt": "say", "stream": True}
    up.script(Behavior(cut_after=1), Behavior(cut_after=0), Behavior(cut_after=3))
    async with httpx2.AsyncClient(trust_env=False, timeout=5.0) as http:
        with pytest.raises(httpx2.RemoteProtocolError):
            async with http.stream("POST", f"{up.base_url}/completions", json=body) as r:
                async for _ in r.aiter_bytes():
                    pass
        with pytest.raises(httpx2.RemoteProtocolError):  # non-stream: half a body
            await http.post(f"{up.base_url}/completions", json={"prompt": "x"})
    async with aiohttp.ClientSession() as session:
        url = f"{up.base_url}/completions"
        with pytest.raises(aiohttp.ClientPayloadError):
            async with session.post(url, json=body) as resp:
                await resp.read()


async def test_async_wait_for_disconnect(up: FakeUpstream) -> None:
    up.script(Behavior(delay_s=5))
    async with httpx2.AsyncClient(trust_env=False, timeout=0.3) as http:
        with pytest.raises(httpx2.ReadTimeout):
            await http.post(f"{up.base_url}/embeddings", json={"input": "x"})
    rec = await up.wait_for_disconnect_async(timeout=2)
    assert rec is not None and rec.path == "/v1/embeddings"


def test_azure_path_and_query_recorded(up: FakeUpstream) -> None:
    with openai.AzureOpenAI(
        azure_endpoint=up.root_url,
        api_key="az-key",
        api_version="2024-10-21",
        max_retries=0,
    ) as azure:
        r = azure.chat.completions.create(model="my-deploy", messages=CHAT)
        e = azure.embeddings.create(model="emb-deploy", input=["a", "b"])
    assert r.choices[0].message.content == "tok0 tok1 tok2 "
    assert len(e.data) == 2
    chat, emb = up.requests
    assert chat.path == "/openai/deployments/my-deploy/chat/completions"
    assert chat.query == "api-version=2024-10-21"
    assert chat.headers["api-key"] == "az-key"
    assert emb.path == "/openai/deployments/emb-deploy/embeddings"


def test_embeddings(up: FakeUpstream, client: openai.OpenAI, http: httpx2.Client) -> None:
    e = client.embeddings.create(model="emb", input=["one two", "three"])  # base64 wire
    assert up.requests[0].json["encoding_format"] == "base64"
    assert [d.index for d in e.data] == [0, 1]
    assert all(len(d.embedding) == 8 for d in e.data)
    assert all(-1.0 <= x <= 1.0 for d in e.data for x in d.embedding)
    assert e.data[0].embedding != e.data[1].embedding
    assert e.usage.prompt_tokens == 3
    body = {"model": "emb", "input": "three", "encoding_format": "float"}
    floats = http.post(f"{up.base_url}/embeddings", json=body).json()
    [vector] = [d["embedding"] for d in floats["data"]]
    packed = struct.pack("<8f", *e.data[1].embedding)
    assert packed == struct.pack("<8f", *vector)  # same input, same vector
    base64_body = {**body, "encoding_format": "base64"}
    raw = http.post(f"{up.base_url}/embeddings", json=base64_body).json()
    assert base64.b64decode(raw["data"][0]["embedding"]) == packed


def test_text_completions(up: FakeUpstream, client: openai.OpenAI) -> None:
    r = client.completions.create(model="davinci", prompt="once upon a time")
    assert (r.object, r.model) == ("text_completion", "davinci")
    assert r.choices[0].text == "tok0 tok1 tok2 "
    assert r.usage is not None and r.usage.prompt_tokens == 4
    chunks = list(
        client.completions.create(
            model="davinci",
            prompt="x",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "tok0 tok1 tok2 "
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_models_and_404_do_not_consume_script(
    up: FakeUpstream, client: openai.OpenAI, http: httpx2.Client
) -> None:
    up.script(Behavior(chunks=1))
    assert [m.id for m in client.models.list()] == up.models
    r = http.get(f"{up.root_url}/v1/nope?x=1")
    assert r.status_code == 404
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert r.json()["error"]["message"] == "Invalid URL (GET /v1/nope)"
    assert up.requests[1].query == "x=1"
    assert http.get(f"{up.base_url}/chat/completions").status_code == 404
    r = http.post(f"{up.base_url}/chat/completions", json={"messages": []})
    assert r.json()["choices"][0]["message"]["content"] == "tok0 "
    r = http.post(f"{up.base_url}/chat/completions", content=b"{not json")
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_headers_keep_alive_and_reset(up: FakeUpstream, http: httpx2.Client) -> None:
    headers = [("X-Dup", "a"), ("x-dup", "b")]
    http.post(f"{up.base_url}/chat/completions?a=1", json={}, headers=headers)
    http.post(f"{up.base_url}/chat/completions", json={})
    first, second = up.requests
    assert first.headers["x-dup"] == "a, b"
    assert first.query == "a=1"
    assert first.client is not None and first.client == second.client  # one conn.
    up.script(Behavior(status=500))
    up.reset()
    assert up.requests == []
    assert http.post(f"{up.base_url}/chat/completions", json={}).status_code == 200


def test_two_upstreams_and_prompt_stop_with_a_stalled_request() -> None:
    with FakeUpstream("a") as a, FakeUpstream("b") as b:
        assert a.base_url != b.base_url
        b.default = Behavior(delay_s=30)
        outcome: list[object] = []

        def call() -> None:
            with httpx2.Client(trust_env=False, timeout=10) as http:
                try:
                    outcome.append(http.post(f"{b.base_url}/completions", json={}))
                except httpx2.HTTPError as exc:
                    outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        deadline = time.monotonic() + 5
        while not b.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        b.stop()
        assert time.monotonic() - started < 3
        caller.join(timeout=5)
        assert outcome and not isinstance(outcome[0], httpx2.ReadTimeout)
        b.stop()  # idempotent
        with httpx2.Client(trust_env=False) as http:
            r = http.post(f"{a.base_url}/chat/completions", json={})
        assert r.headers["x-fake-upstream"] == "a"
