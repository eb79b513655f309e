"""End to end: a real `asgi-llm serve` exports its spans over OTLP/HTTP to a loopback receiver
(tests/fakes/otlp.py), and the fake upstream sees the attempt span's `traceparent`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.conftest import find_secrets, upstream_model
from tests.fakes.otlp import OTLPReceiver
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.harness import ProxyServer
from tests.tracing.conftest import CLIENT_SPAN, CLIENT_TRACE, TRACEPARENT
from tests.waiting import wait_until

PROMPT = "a prompt that must not be exported"


@pytest.fixture
def otlp() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream("traced") as server:
        yield server


def proxy_config(otlp: OTLPReceiver, upstream: FakeUpstream) -> dict[str, object]:
    return {
        "models": [upstream_model("m", upstream.base_url)],
        "tracing": {
            "otlp_endpoint": otlp.url,
            "service_name": "gateway-under-test",
            "headers": {"x-backend-key": "s3cret-export-key"},
        },
    }


def test_a_streamed_request_is_exported_as_two_spans_and_its_trace_reaches_the_upstream(
    otlp: OTLPReceiver, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.default = Behavior(chunks=3, chunk_delay_s=0.02)
    env = {"OTEL_BSP_SCHEDULE_DELAY": "50"}  # the SDK's batch delay: export within 50 ms
    with ProxyServer(proxy_config(otlp, upstream), tmp_path, env=env) as proxy:
        body = {
            "model": "m",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": PROMPT}],
        }
        with httpx2.stream(
            "POST", proxy.base_url + "/chat/completions", json=body, headers={"traceparent": TRACEPARENT}
        ) as response:
            assert response.status_code == 200
            text = response.read().decode()
        assert text.rstrip().endswith("data: [DONE]")
        spans = wait_until(lambda: otlp.spans if len(otlp.spans) >= 2 else None)
    server = next(s for s in spans if s.kind == "SERVER")
    attempt = next(s for s in spans if s.kind == "CLIENT")
    assert server.name == "chat m" and attempt.name == "chat m-upstream"
    assert server.trace_id == attempt.trace_id == CLIENT_TRACE
    assert server.parent_span_id == CLIENT_SPAN and attempt.parent_span_id == server.span_id
    assert server.resource["service.name"] == "gateway-under-test"
    assert server.attributes["gen_ai.usage.output_tokens"] == 3
    assert server.attributes["asgi_llm.stream"] is True
    assert attempt.attributes["gen_ai.provider.name"] == "openai-compatible"
    (request,) = [r for r in upstream.requests if r.method == "POST"]
    assert request.headers["traceparent"].startswith(f"00-{CLIENT_TRACE}-{attempt.span_id}-")
    assert all(export["x-backend-key"] == "s3cret-export-key" for export in otlp.exports)
    exported = repr([(s.name, s.attributes) for s in spans])
    assert PROMPT not in exported and "sk-upstream-secret" not in exported
    assert not find_secrets(exported) and "s3cret" not in proxy.log()


def test_spans_still_queued_are_exported_when_the_server_stops(
    otlp: OTLPReceiver, upstream: FakeUpstream, tmp_path: Path
) -> None:
    env = {"OTEL_BSP_SCHEDULE_DELAY": "600000"}  # only the lifespan shutdown's flush exports
    proxy = ProxyServer(proxy_config(otlp, upstream), tmp_path, env=env)
    try:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx2.post(proxy.base_url + "/chat/completions", json=body).status_code == 200
        assert otlp.spans == []
    finally:
        proxy.stop()
    assert {s.kind for s in otlp.spans} == {"SERVER", "CLIENT"}
