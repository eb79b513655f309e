"""The suite's own secret scan (tests/conftest.py) sees what it must: log lines, response
headers and bodies of in-process clients, and Prometheus text. Proved here on planted leaks,
so a scan that silently stopped looking would fail."""

from __future__ import annotations

import logging

import httpx2
import pytest

from tests.conftest import find_secrets, scan_metrics, scan_response

LEAKS = [
    "sk-live-0123456789",
    "sha256:" + "ab" * 32,
    "Bearer abc.def",
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.sig",
]


@pytest.mark.parametrize("leak", LEAKS)
def test_the_patterns_find_each_kind_of_secret(leak):
    assert find_secrets(f"upstream said: {leak} (oops)")


@pytest.mark.parametrize("text", ["sk-***ab", "Task-1234567 finished", "Bearer ***", "ask-me-anything"])
def test_masked_and_ordinary_text_passes(text):
    assert not find_secrets(text)


@pytest.mark.parametrize("where", ["header", "body"])
async def test_a_leaking_response_fails_the_scan(where):
    request = httpx2.Request("POST", "http://proxy.test/v1/chat/completions")
    response = httpx2.Response(
        200,
        request=request,
        content=b"sk-live-0123456789" if where == "body" else b"{}",
        headers={"x-debug": "sk-live-0123456789"} if where == "header" else {},
    )
    with pytest.raises(AssertionError, match="key material in a response"):
        await scan_response(response)


async def test_a_minted_key_is_the_one_allowed_secret():
    request = httpx2.Request("POST", "http://proxy.test/admin/keys")
    await scan_response(httpx2.Response(201, request=request, json={"id": "a", "key": "sk-live-0123456789"}))


def test_leaking_metrics_fail_the_scan():
    class Exporter:
        def render(self):
            return b'asgi_llm_requests_total{model="sk-live-0123456789"} 1\n', "text/plain"

    from asgi_llm import Config, MetricsMiddleware

    metrics = MetricsMiddleware(lambda *_: None, config=Config.from_dict({"models": []}))
    metrics._prometheus = Exporter()
    with pytest.raises(AssertionError, match="key material in metrics"):
        scan_metrics(metrics)


def test_log_lines_are_captured_at_debug(no_secrets_in_logs):
    logging.getLogger("asgi_llm.test").debug("a harmless line")
    assert no_secrets_in_logs.lines[-1] == "asgi_llm.test: a harmless line"
