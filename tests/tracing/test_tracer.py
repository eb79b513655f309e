"""The spans of a request, captured with the SDK's InMemorySpanExporter behind the real
BatchSpanProcessor: one SERVER span per request, one CLIENT span per upstream attempt, the
GenAI attributes, the W3C context in and out, errors, streams and clients that leave."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

import httpx2
import orjson
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from asgi_llm import Config, build_app
from tests.conftest import find_secrets, mock_model, run_lifespan_shutdown
from tests.fakes.bedrock import ACCESS_KEY_ID, SECRET_ACCESS_KEY, FakeBedrock
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.tracing.conftest import (
    CLIENT_SPAN,
    CLIENT_TRACE,
    TRACEPARENT,
    attributes,
    config,
    hex_id,
)
from tests.waiting import await_until

CHAT = {
    "model": "m",
    "messages": [{"role": "user", "content": "the secret recipe is tomato"}],
    "max_tokens": 7,
}


def traceparent_of(upstream: FakeUpstream) -> list[str | None]:
    return [r.headers.get("traceparent") for r in upstream.requests if r.method == "POST"]


def sampled(traceparent: str | None) -> bool:
    """The sampled bit of a traceparent's flags (the SDK also sets W3C level 2's random bit)."""
    assert traceparent is not None
    return bool(int(traceparent.rsplit("-", 1)[1], 16) & 1)


def ids(traceparent: str | None) -> str:
    """`version-trace_id-span_id` of a traceparent, without the flags."""
    assert traceparent is not None
    return traceparent.rsplit("-", 1)[0]


async def test_a_request_span_and_its_attempt_span_continue_the_clients_trace(traced, upstream):
    spans, client = traced(config(upstream))
    response = await client.post(
        "/v1/chat/completions", json={**CHAT, "temperature": 0.5}, headers={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 200
    server, attempt = spans.one("SERVER"), spans.one("CLIENT")
    assert server.name == "chat m"
    assert attempt.name == "chat m-upstream"  # the model the upstream is asked for
    assert hex_id(server.context.trace_id, 32) == CLIENT_TRACE == hex_id(attempt.context.trace_id, 32)
    assert server.parent is not None and hex_id(server.parent.span_id, 16) == CLIENT_SPAN
    assert attempt.parent is not None and attempt.parent.span_id == server.context.span_id
    assert server.start_time <= attempt.start_time <= attempt.end_time <= server.end_time
    on_server = attributes(server)
    assert on_server["gen_ai.operation.name"] == "chat"
    assert on_server["gen_ai.request.model"] == "m"
    assert on_server["gen_ai.response.model"] == "m-upstream"
    assert on_server["gen_ai.provider.name"] == "openai-compatible"
    assert on_server["gen_ai.request.max_tokens"] == 7
    assert on_server["gen_ai.request.temperature"] == 0.5
    assert on_server["gen_ai.usage.input_tokens"] > 0 and on_server["gen_ai.usage.output_tokens"] > 0
    assert on_server["gen_ai.response.finish_reasons"] == ("stop",)
    assert on_server["http.response.status_code"] == 200
    assert on_server["http.route"] == "/v1/chat/completions"
    assert on_server["asgi_llm.deployment"] == "m-0" and on_server["asgi_llm.attempts"] == 1
    assert on_server["asgi_llm.request_id"] == response.headers["x-request-id"]
    on_attempt = attributes(attempt)
    assert on_attempt["server.address"] == "127.0.0.1"
    assert on_attempt["server.port"] == int(upstream.root_url.rsplit(":", 1)[1])
    assert on_attempt["http.response.status_code"] == 200
    assert on_attempt["asgi_llm.attempt"] == 1
    assert on_attempt["gen_ai.usage.input_tokens"] == on_server["gen_ai.usage.input_tokens"]
    assert server.status.status_code is StatusCode.UNSET and attempt.status.status_code is StatusCode.UNSET


async def test_the_upstream_receives_the_attempt_spans_traceparent_and_the_clients_tracestate(
    traced, upstream
):
    spans, client = traced(config(upstream))
    headers = {"traceparent": TRACEPARENT, "tracestate": "vendor=abc"}
    assert (await client.post("/v1/chat/completions", json=CHAT, headers=headers)).status_code == 200
    attempt = spans.one("CLIENT")
    (request,) = [r for r in upstream.requests if r.method == "POST"]
    assert ids(request.headers["traceparent"]) == f"00-{CLIENT_TRACE}-{hex_id(attempt.context.span_id, 16)}"
    assert sampled(request.headers["traceparent"])
    assert request.headers["tracestate"] == "vendor=abc"


async def test_without_a_traceparent_the_request_span_is_a_root(traced, upstream):
    spans, client = traced(config(upstream))
    assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
    server, attempt = spans.one("SERVER"), spans.one("CLIENT")
    assert server.parent is None
    assert attempt.parent is not None and attempt.parent.span_id == server.context.span_id
    (traceparent,) = traceparent_of(upstream)
    assert (
        ids(traceparent) == f"00-{hex_id(server.context.trace_id, 32)}-{hex_id(attempt.context.span_id, 16)}"
    )


async def test_a_failed_attempt_is_an_error_span_and_the_next_attempt_answers(traced, upstream):
    upstream.script(Behavior(status=500))
    spans, client = traced(config(upstream))
    response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200 and response.headers["x-llm-attempts"] == "2"
    first, second = sorted(spans.of_kind("CLIENT"), key=lambda s: s.start_time)
    assert attributes(first)["error.type"] == "500"
    assert attributes(first)["http.response.status_code"] == 500
    assert first.status.status_code is StatusCode.ERROR
    assert attributes(first)["asgi_llm.attempt"] == 1 and attributes(second)["asgi_llm.attempt"] == 2
    assert "error.type" not in attributes(second)
    # Each attempt's traceparent names its own span.
    ids = [hex_id(s.context.span_id, 16) for s in (first, second)]
    assert [tp.split("-")[2] for tp in traceparent_of(upstream) if tp] == ids
    server = spans.one("SERVER")
    assert attributes(server)["asgi_llm.attempts"] == 2 and "error.type" not in attributes(server)


async def test_every_attempt_failing_is_an_error_request_span(traced, upstream):
    upstream.default = Behavior(status=503)
    spans, client = traced(config(upstream, routing={"retries": 1}))
    response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    server = spans.one("SERVER")
    assert attributes(server)["http.response.status_code"] == 502
    assert attributes(server)["error.type"] == response.json()["error"]["code"]
    assert server.status.status_code is StatusCode.ERROR
    assert [attributes(s)["error.type"] for s in spans.of_kind("CLIENT")] == ["503", "503"]


async def test_a_refused_request_has_a_span_and_no_attempt(traced, upstream):
    data = config(upstream, auth={"api_keys": [{"id": "k", "key_sha256": "sha256:" + "0" * 64}]})
    spans, client = traced(data)
    response = await client.post(
        "/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer sk-wrong-key-123"}
    )
    assert response.status_code == 401
    server = spans.one("SERVER")
    assert attributes(server)["http.response.status_code"] == 401
    assert attributes(server)["error.type"] == "invalid_api_key"
    assert server.status.status_code is StatusCode.UNSET  # a 4xx is the client's error (HTTP server semconv)
    assert spans.of_kind("CLIENT") == [] and traceparent_of(upstream) == []


async def test_a_cache_hit_has_a_request_span_and_no_attempt(traced, upstream):
    spans, client = traced(config(upstream, cache={"backend": "memory://"}))
    for _ in range(2):
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
    miss, hit = sorted(spans.of_kind("SERVER"), key=lambda s: s.start_time)
    assert attributes(miss)["asgi_llm.cache"] == "miss" and attributes(hit)["asgi_llm.cache"] == "hit"
    assert attributes(hit)["asgi_llm.cache_kind"] == "exact"
    assert len(spans.of_kind("CLIENT")) == 1


async def test_embeddings_and_the_models_list_are_named_by_their_operation_or_route(traced, upstream):
    spans, client = traced(config(upstream))
    assert (await client.post("/v1/embeddings", json={"model": "m", "input": "hello"})).status_code == 200
    assert (await client.get("/v1/models/m")).status_code == 200
    names = {s.name for s in spans.of_kind("SERVER")}
    assert names == {"embeddings m", "GET /v1/models/{model}"}
    (models,) = [s for s in spans.of_kind("SERVER") if s.name.startswith("GET")]
    assert "gen_ai.request.model" not in attributes(models)  # the path's id is not a GenAI request


async def call(app: Any, body: dict[str, Any], *, leave_after: int | None = None) -> list[tuple[int, Any]]:
    """A POST straight to the ASGI app (streams are not buffered): (time_ns, message) of each
    message sent; `leave_after` body chunks, the client disconnects."""
    sent: list[tuple[int, Any]] = []
    gone = asyncio.Event()
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": orjson.dumps(body), "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append((time.time_ns(), message))
        chunks = sum(1 for _, m in sent if m["type"] == "http.response.body" and m.get("body"))
        if leave_after is not None and chunks >= leave_after:
            gone.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"traceparent", TRACEPARENT.encode())],
        "client": ("127.0.0.1", 1234),
        "server": ("proxy.test", 80),
    }
    await app(scope, receive, send)
    return sent


async def test_a_stream_span_ends_when_the_stream_ends(traced, upstream):
    upstream.default = Behavior(chunks=4, chunk_delay_s=0.05)
    spans, client = traced(config(upstream))
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    sent = await call(spans.app, body)
    last_chunk = max(t for t, m in sent if m["type"] == "http.response.body")
    server, attempt = spans.one("SERVER"), spans.one("CLIENT")
    assert attempt.end_time >= last_chunk - 10_000_000  # the relay ends after its last byte went out
    assert server.end_time >= last_chunk and server.end_time >= attempt.end_time
    assert server.end_time - server.start_time >= 120_000_000  # 4 chunks 50 ms apart
    assert attributes(server)["asgi_llm.stream"] is True
    assert attributes(server)["gen_ai.usage.output_tokens"] == 4


async def test_a_client_that_leaves_mid_stream_ends_both_spans(traced, upstream):
    upstream.default = Behavior(chunks=50, chunk_delay_s=0.05)
    spans, client = traced(config(upstream))
    await call(spans.app, {**CHAT, "stream": True}, leave_after=2)
    assert await upstream.wait_for_disconnect_async(5.0) is not None  # the upstream call was closed
    server, attempt = spans.one("SERVER"), spans.one("CLIENT")
    assert attributes(server)["asgi_llm.client_gone"] is True
    assert attributes(attempt)["error.type"] == "client_gone"
    assert server.end_time - server.start_time < 2_000_000_000  # not the whole 2.5 s stream


async def test_no_prompt_text_and_no_secret_in_any_span(traced, upstream):
    key = "sk-client-key-for-tracing-123"
    data = config(
        upstream,
        auth={
            "api_keys": [
                {
                    "id": "team-key",
                    "key_sha256": "sha256:" + hashlib.sha256(key.encode()).hexdigest(),
                    "tenant": "team-a",
                    "roles": ["user"],
                }
            ],
            "roles": {"user": {"models": ["*"], "endpoints": ["*"]}},
        },
        tracing={"headers": {"x-honeycomb-team": "s3cret-export-token"}},
    )
    spans, client = traced(data)
    response = await client.post(
        "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200
    everything = json.dumps(
        [{k: str(v) for k, v in attributes(s).items()} | {"name": s.name} for s in spans.spans()]
    )
    assert "tomato" not in everything and "recipe" not in everything
    assert key not in everything and "team-key" not in everything  # neither the key nor its id
    assert "sk-upstream-secret" not in everything and "s3cret" not in everything
    assert not find_secrets(everything)
    assert attributes(spans.one("SERVER"))["asgi_llm.tenant"] == "team-a"


async def test_capture_content_puts_the_messages_in_the_request_span(traced, upstream):
    spans, client = traced(config(upstream, tracing={"capture_content": True}))
    assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
    messages = json.loads(attributes(spans.one("SERVER"))["gen_ai.input.messages"])
    assert messages == CHAT["messages"]
    assert "gen_ai.input.messages" not in attributes(spans.one("CLIENT"))


async def test_sampling_follows_the_ratio_and_the_clients_sampled_flag(traced, upstream):
    spans, client = traced(config(upstream, tracing={"sample_ratio": 0.0}))
    assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
    assert spans.spans() == []
    # Not recorded, but the trace still goes on upstream, marked not sampled.
    (unsampled,) = traceparent_of(upstream)
    assert not sampled(unsampled)
    # A client that samples its trace is followed (ParentBased), whatever the ratio.
    assert (
        await client.post("/v1/chat/completions", json=CHAT, headers={"traceparent": TRACEPARENT})
    ).status_code == 200
    assert len(spans.of_kind("SERVER")) == 1 and len(spans.of_kind("CLIENT")) == 1
    assert sampled(traceparent_of(upstream)[1])


async def test_with_tracing_off_no_traceparent_goes_upstream(asgi_client, upstream):
    data = config(upstream)
    del data["tracing"]
    client = asgi_client(data)
    response = await client.post("/v1/chat/completions", json=CHAT, headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200
    assert traceparent_of(upstream) == [None]


async def test_a_reload_without_tracing_stops_the_spans(traced, upstream):
    data = config(upstream)
    spans, client = traced(data)
    assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
    assert len(spans.spans()) == 2
    without = {k: v for k, v in data.items() if k != "tracing"}
    spans.app.configs.replace(Config.from_dict(without))
    assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
    assert len(spans.spans()) == 2 and traceparent_of(upstream)[1] is None


async def test_the_mock_provider_is_traced_too(traced):
    spans, client = traced({"models": [mock_model()], "tracing": {"otlp_endpoint": "http://127.0.0.1:9"}})
    assert (await client.post("/v1/chat/completions", json={**CHAT, "model": "mock-1"})).status_code == 200
    attempt = spans.one("CLIENT")
    assert attributes(attempt)["gen_ai.provider.name"] == "mock"
    assert "server.address" not in attributes(attempt)


async def test_shutdown_exports_what_is_queued(upstream):
    exporter = InMemorySpanExporter()
    app = build_app(Config.from_dict(config(upstream)), span_exporter=exporter)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://proxy.test"
    ) as client:
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
    # The batch processor's delay is 5 s: only the lifespan shutdown's flush exports this soon.
    assert exporter.get_finished_spans() == ()
    await run_lifespan_shutdown(app)
    await await_until(lambda: len(exporter.get_finished_spans()) == 2, timeout=5)


async def test_a_signed_bedrock_request_carries_the_traceparent_and_still_verifies(traced):
    # The deployment's transport signs what it is handed (SigV4): the traceparent is added
    # before it, so the fake's signature check, which refuses any tampering, passes.
    with FakeBedrock("traced-aws") as aws:
        deployment = {
            "id": "b",
            "provider": "bedrock",
            "model": "anthropic.claude-3-haiku-20240307-v1:0",
            "region": "us-east-1",
            "base_url": aws.base_url,
            "aws_access_key_id": ACCESS_KEY_ID,
            "aws_secret_access_key": SECRET_ACCESS_KEY,
        }
        spans, client = traced(
            {
                "models": [{"name": "claude", "deployments": [deployment]}],
                "tracing": {"otlp_endpoint": "http://127.0.0.1:9"},
            }
        )
        response = await client.post(
            "/v1/chat/completions", json={**CHAT, "model": "claude"}, headers={"traceparent": TRACEPARENT}
        )
        assert response.status_code == 200, response.text
        attempt = spans.one("CLIENT")
        (request,) = [r for r in aws.requests if r.method == "POST"]
        assert (
            ids(request.headers["traceparent"]) == f"00-{CLIENT_TRACE}-{hex_id(attempt.context.span_id, 16)}"
        )
        assert attributes(attempt)["gen_ai.provider.name"] == "aws.bedrock"
