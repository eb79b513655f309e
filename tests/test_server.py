"""The official openai SDK against a real `asgi-llm serve` process and fake upstreams."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx2
import openai
import pytest

from tests.conftest import assert_error_shape, upstream_model
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.harness import SERVERS, ProxyServer, free_port

USER = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def upstreams():
    with FakeUpstream("one") as one, FakeUpstream("two") as two:
        yield one, two


@pytest.fixture(scope="module")
def proxy(upstreams, tmp_path_factory):
    one, two = upstreams
    config = {
        "models": [
            upstream_model("pair", one.base_url, two.base_url),
            upstream_model("solo", one.base_url),
            upstream_model("impatient", one.base_url, first_byte_timeout_s=0.5, idle_timeout_s=0.5),
            upstream_model("idle", one.base_url, first_byte_timeout_s=2, idle_timeout_s=0.5),
            {
                "name": "azure-m",
                "deployments": [
                    {
                        "id": "az",
                        "provider": "azure",
                        "model": "my-deployment",
                        "base_url": one.root_url,
                        "api_version": "2024-06-01",
                        "api_key": "azure-secret-key",
                    }
                ],
            },
            {"name": "mock-1", "deployments": [{"id": "mock", "provider": "mock", "model": "mock-1"}]},
        ],
        "routing": {"retries": 1},
    }
    with ProxyServer(config, tmp_path_factory.mktemp("proxy")) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(upstreams):
    for up in upstreams:
        up.reset()
        up.default = Behavior()


@pytest.fixture
def sdk(proxy):
    with openai.OpenAI(base_url=proxy.base_url, api_key="sk-client-key", max_retries=0, timeout=20) as client:
        yield client


def test_chat_non_stream(sdk, upstreams):
    one, _ = upstreams
    raw = sdk.chat.completions.with_raw_response.create(model="solo", messages=USER)
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.usage.completion_tokens == 3
    assert raw.headers["x-llm-deployment"] == "solo-0"
    assert raw.headers["x-llm-attempts"] == "1"
    seen = one.requests[-1]
    assert seen.json["model"] == "solo-upstream"  # the deployment's own model name
    assert seen.headers["authorization"] == "Bearer sk-upstream-secret-0"
    assert "sk-client-key" not in str(seen.headers)


def test_stream_arrives_chunk_by_chunk(sdk, upstreams):
    one, _ = upstreams
    one.default = Behavior(chunks=4, chunk_delay_s=0.4)
    started = time.monotonic()
    stream = sdk.chat.completions.create(model="solo", messages=USER, stream=True)
    arrivals, text = [], ""
    for chunk in stream:
        arrivals.append(time.monotonic() - started)
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    assert text == "tok0 tok1 tok2 tok3 "
    # the first content arrived long before the upstream had finished (4 x 0.4 s)
    assert arrivals[0] < 1.0 and arrivals[-1] > 1.5
    # usage was asked for upstream (to count tokens), and dropped again for this client
    assert one.requests[-1].json["stream_options"] == {"include_usage": True}


def test_stream_without_include_usage_has_no_usage_chunk(proxy):
    body = {"model": "solo", "messages": USER, "stream": True}
    with httpx2.stream("POST", proxy.base_url + "/chat/completions", json=body) as response:
        text = response.read().decode()
    # No usage chunk (the per-chunk `"usage":null` OpenAI adds is harmless and passed on).
    assert '"usage":{' not in text and '"choices":[]' not in text
    assert text.rstrip().endswith("data: [DONE]")


def test_stream_with_include_usage_ends_with_usage(sdk):
    chunks = list(
        sdk.chat.completions.create(
            model="solo", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert chunks[-1].choices == []


def test_embeddings_and_models(sdk):
    result = sdk.embeddings.create(model="solo", input=["a", "b"])
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8
    assert {m.id for m in sdk.models.list()} >= {"pair", "solo", "mock-1"}


def test_mock_model_streams_offline(sdk):
    text = "".join(
        c.choices[0].delta.content or ""
        for c in sdk.chat.completions.create(model="mock-1", messages=USER, stream=True)
        if c.choices
    )
    assert text == "This is mock-1 answering: Say hello"


def test_failover_to_the_next_deployment_before_the_first_byte(sdk, upstreams):
    one, two = upstreams
    one.script(Behavior(status=503))
    raw = sdk.chat.completions.with_raw_response.create(model="pair", messages=USER)
    assert raw.headers["x-llm-deployment"] == "pair-1"
    assert raw.headers["x-llm-attempts"] == "2"
    assert len(one.requests) == 1 and len(two.requests) == 1


def test_every_deployment_failing_is_a_502(sdk, upstreams):
    for up in upstreams:
        up.default = Behavior(status=500, error_message="boom sk-leakedkey123456")
    with pytest.raises(openai.InternalServerError) as info:
        sdk.chat.completions.create(model="pair", messages=USER)
    assert info.value.status_code == 502
    assert info.value.body["type"] == "upstream_error"
    assert "leakedkey" not in str(info.value.body)
    assert sum(len(up.requests) for up in upstreams) == 2  # 1 + retries


def test_upstream_4xx_is_passed_on_without_retry(sdk, upstreams):
    one, two = upstreams
    one.script(Behavior(status=400, error_message="max_tokens is too large for this model"))
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(model="pair", messages=USER)
    assert "max_tokens is too large" in info.value.body["message"]
    assert len(two.requests) == 0


def test_upstream_429_everywhere_is_passed_on_with_retry_after(proxy, upstreams):
    for up in upstreams:
        up.default = Behavior(status=429, headers={"retry-after": "7"})
    response = httpx2.post(proxy.base_url + "/chat/completions", json={"model": "pair", "messages": USER})
    assert_error_shape(response, 429)
    assert response.headers["retry-after"] == "7"


def test_first_byte_timeout_is_a_504(sdk, upstreams):
    one, _ = upstreams
    one.default = Behavior(delay_s=3)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        sdk.chat.completions.create(model="impatient", messages=USER)
    assert info.value.status_code == 504
    assert info.value.body["code"] == "first_token_timeout"
    assert time.monotonic() - started < 2.5  # two attempts of 0.5 s, not 2 x 3 s


def test_late_first_chunk_is_a_504_before_any_byte(proxy, upstreams):
    one, _ = upstreams
    one.default = Behavior(chunks=3, chunk_delay_s=1.5)
    body = {"model": "impatient", "messages": USER, "stream": True}
    with httpx2.stream("POST", proxy.base_url + "/chat/completions", json=body, timeout=10) as response:
        response.read()
    assert_error_shape(response, 504, "first_token_timeout")


def test_idle_stream_ends_with_an_error_event_and_no_done(proxy, upstreams):
    one, _ = upstreams
    # first chunk after 1 s (within the 2 s first-byte limit), the next 1 s later (> 0.5 s idle)
    one.default = Behavior(chunks=3, chunk_delay_s=1.0)
    body = {"model": "idle", "messages": USER, "stream": True}
    with httpx2.stream("POST", proxy.base_url + "/chat/completions", json=body, timeout=10) as response:
        text = response.read().decode()
    assert response.status_code == 200
    assert "tok0" in text and "tok1" not in text
    assert '"code":"stream_timeout"' in text
    assert "[DONE]" not in text


def test_cut_stream_ends_with_stream_interrupted(sdk, upstreams):
    one, _ = upstreams
    one.default = Behavior(chunks=6, cut_after=2)
    stream = sdk.chat.completions.create(model="solo", messages=USER, stream=True)
    got = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            got.append(chunk)
    assert got, "the chunks before the cut reached the client"
    assert "interrupted" in str(info.value)
    assert len(one.requests) == 1  # no retry after bytes were sent


def test_client_disconnect_mid_stream_closes_the_upstream(proxy, upstreams):
    one, _ = upstreams
    one.default = Behavior(chunks=50, chunk_delay_s=0.2)
    body = {"model": "solo", "messages": USER, "stream": True}
    with httpx2.stream("POST", proxy.base_url + "/chat/completions", json=body) as response:
        for _ in response.iter_raw():
            break
        left_at = time.monotonic()
    gone = one.wait_for_disconnect(timeout=5)
    assert gone is not None
    assert gone.disconnected_at - left_at < 1.0


def test_client_disconnect_while_waiting_closes_the_upstream(proxy, upstreams):
    one, _ = upstreams
    one.default = Behavior(delay_s=10)
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.post(
            proxy.base_url + "/chat/completions",
            json={"model": "solo", "messages": USER},
            timeout=httpx2.Timeout(5, read=0.5),
        )
    left_at = time.monotonic()
    gone = one.wait_for_disconnect(timeout=5)
    assert gone is not None and gone.disconnected_at - left_at < 1.0


def test_azure_deployment_urls_and_key_header(sdk, upstreams):
    one, _ = upstreams
    sdk.chat.completions.create(model="azure-m", messages=USER)
    seen = one.requests[-1]
    assert seen.path == "/openai/deployments/my-deployment/chat/completions"
    assert seen.query == "api-version=2024-06-01"
    assert seen.headers["api-key"] == "azure-secret-key"
    assert "authorization" not in seen.headers


def test_upstream_cookies_and_client_credentials_do_not_cross(proxy, upstreams):
    one, _ = upstreams
    one.default = Behavior(headers={"set-cookie": "session=upstream", "connection": "close"})
    response = httpx2.post(
        proxy.base_url + "/chat/completions",
        json={"model": "solo", "messages": USER},
        headers={
            "authorization": "Bearer sk-client",
            "x-api-key": "sk-client2",
            "cookie": "mine=1",
            "x-forwarded-for": "1.2.3.4",
        },
    )
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    seen = one.requests[-1].headers
    assert "sk-client" not in str(seen) and "cookie" not in seen and "x-forwarded-for" not in seen


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" * 100_000, 400),
        (b'{"model": "solo", "messages": [{"role": "user", "content": "\xff"}]}', 400),
        (b'{"model": "solo", "messages": "nope"}', 400),
        (b"{" + b" " * (5 * 1024 * 1024) + b"}", 413),
    ],
)
def test_bad_input_over_the_wire_then_still_healthy(proxy, body, status):
    response = httpx2.post(
        proxy.base_url + "/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert_error_shape(response, status)
    assert httpx2.get(proxy.root_url + "/healthz").status_code == 200


def test_sdk_error_statuses(sdk):
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="no-such-model", messages=USER)
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(model="solo", messages=USER, extra_body={"api_base": "http://x"})
    assert info.value.body["code"] == "unsupported_parameter"


def test_embedded_default_serves_mock_1(tmp_path):
    with ProxyServer(None, tmp_path) as server:
        assert "no auth" in server.log()
        with openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0) as client:
            reply = client.chat.completions.create(model="mock-1", messages=USER)
            assert reply.choices[0].message.content.startswith("This is mock-1")
            assert [m.id for m in client.models.list()] == ["mock-1"]


def run_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("ASGI_LLM_CONFIG", "OPENAI_API_KEY")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "asgi_llm", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )


BROKEN_STARTUP = """\
from asgi_llm.ratelimit import RateLimitMiddleware

async def startup(self):
    raise OSError("storage exploded")

RateLimitMiddleware.startup = startup
"""


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_failed_startup_exits_1_with_the_reason(tmp_path, workers, server):
    """A layer's startup raising used to leave hypercorn serving "without Lifespan support"
    (/readyz ready, every LLM request 500): now the process ends, saying why."""
    (tmp_path / "sitecustomize.py").write_text(BROKEN_STARTUP)  # every process of the run
    pythonpath = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    result = run_serve(
        "--port", str(free_port()), "--workers", workers, "--server", server, env={"PYTHONPATH": pythonpath}
    )
    assert result.returncode == 1, result.stderr
    reason = "RateLimitMiddleware startup failed: OSError: storage exploded"
    assert f"asgi-llm: cannot start: {reason}" in result.stderr.splitlines()
    assert "without Lifespan" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_exits_1_with_one_line_and_no_banner(workers, server):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_serve("--port", str(port), "--workers", workers, "--server", server)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"asgi-llm: cannot listen on 127.0.0.1:{port}: address already in use"
    ]


def test_the_banner_comes_once_listening_and_names_the_bound_port(tmp_path):
    with ProxyServer(None, tmp_path) as server:
        log = server.log()
    assert f"asgi-llm: serving http://127.0.0.1:{server.port}/v1 with <embedded default>" in log
