"""Token settlement over the wire: a real `asgi-llm serve`, a fake upstream and Redis.

Each request reserves prompt estimate + max_tokens (1,000 here); once the response is over
the reservation must become what was really used: the upstream's usage, or for a stream that
was cut or left by the client, the prompt estimate plus the content events delivered.
"""

from __future__ import annotations

import time

import httpx2
import pytest
import redis

from tests.conftest import upstream_model
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.harness import ProxyServer
from tests.ratelimit.conftest import PROMPT_ESTIMATE, USER

LIMIT = "100000/hour"


@pytest.fixture(scope="module")
def upstream():
    with FakeUpstream("tokens") as up:
        yield up


@pytest.fixture(scope="module")
def setup(upstream, redis_available, tmp_path_factory):
    prefix = f"rl-streams-{time.time_ns()}"
    url = f"{redis_available}/1"
    config = {
        "models": [upstream_model("up", upstream.base_url)],
        "limits": {
            "storage": url,
            "key_prefix": prefix,
            "timeout_s": 5,
            "rules": [{"per": "ip", "tokens": LIMIT}],
        },
    }
    client = redis.Redis.from_url(url)
    with ProxyServer(config, tmp_path_factory.mktemp("streams")) as server:
        yield server, client, "{" + prefix + "}:ip::t:100000/3600000:ip:127.0.0.1:s"
    for key in client.scan_iter(match="{" + prefix + "}*"):
        client.delete(key)
    client.close()


@pytest.fixture(autouse=True)
def fresh(upstream):
    upstream.reset()
    upstream.default = Behavior()


def tokens_in_window(client: redis.Redis, key: str) -> int:
    return int(client.get(key) or 0)


def settled(client: redis.Redis, key: str, accept, timeout: float = 5.0) -> int:
    """The window's total once `accept(total)` holds (settlement runs after the last byte)."""
    deadline = time.monotonic() + timeout
    while True:
        total = tokens_in_window(client, key)
        if accept(total) or time.monotonic() > deadline:
            return total
        time.sleep(0.02)


def body(stream: bool) -> dict:
    return {"model": "up", "messages": USER, "max_tokens": 1000, "stream": stream}


def test_non_streamed_usage_is_charged(setup):
    server, client, key = setup
    before = tokens_in_window(client, key)
    response = httpx2.post(server.base_url + "/chat/completions", json=body(False), timeout=10)
    assert response.status_code == 200
    assert response.headers["x-ratelimit-limit-tokens"] == "100000"
    expected = before + 2 + 3  # the fake's usage: 2 prompt words, 3 chunks
    assert settled(client, key, lambda t: t == expected) == expected


def test_streamed_usage_is_charged(setup, upstream):
    server, client, key = setup
    upstream.default = Behavior(chunks=4)
    before = tokens_in_window(client, key)
    with httpx2.stream(
        "POST", server.base_url + "/chat/completions", json=body(True), timeout=10
    ) as response:
        assert response.status_code == 200
        text = response.read().decode()
    assert "[DONE]" in text and '"prompt_tokens"' not in text  # no usage asked for, none sent
    expected = before + 2 + 4
    assert settled(client, key, lambda t: t == expected) == expected


def test_cut_stream_charges_what_was_delivered(setup, upstream):
    server, client, key = setup
    upstream.default = Behavior(chunks=6, cut_after=3)
    before = tokens_in_window(client, key)
    with httpx2.stream(
        "POST", server.base_url + "/chat/completions", json=body(True), timeout=10
    ) as response:
        text = response.read().decode()
    assert "stream_interrupted" in text
    expected = before + PROMPT_ESTIMATE + 3
    assert settled(client, key, lambda t: t == expected) == expected


def test_client_disconnect_mid_stream_charges_what_was_delivered(setup, upstream):
    server, client, key = setup
    upstream.default = Behavior(chunks=60, chunk_delay_s=0.05)
    before = tokens_in_window(client, key)
    received = 0
    with httpx2.stream(
        "POST", server.base_url + "/chat/completions", json=body(True), timeout=10
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                received += 1
                if received == 3:
                    break
    assert upstream.wait_for_disconnect(timeout=5) is not None
    reserved = before + PROMPT_ESTIMATE + 1000
    total = settled(client, key, lambda t: t < reserved)
    charged = total - before
    assert PROMPT_ESTIMATE + 3 <= charged < PROMPT_ESTIMATE + 60
