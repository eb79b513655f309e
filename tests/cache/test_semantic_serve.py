"""The semantic tier with its default settings and the real model, through `asgi-llm serve`:
every pair of the benchmark's near-miss list misses, a plain rephrasing hits."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from benchmarks.cache_semantic import NEAR_MISSES
from tests.cache.conftest import cache_config
from tests.fakes.upstream import FakeUpstream
from tests.harness import ProxyServer


@pytest.fixture(scope="module")
def proxy(upstream_server: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    pytest.importorskip("onnxruntime")
    config = cache_config(upstream_server, semantic={"enabled": True})  # every other setting default
    with ProxyServer(
        config, tmp_path_factory.mktemp("semantic-serve"), env={"OMP_NUM_THREADS": "1"}
    ) as server:
        yield server


def ask(client: httpx2.Client, context: str, text: str) -> httpx2.Response:
    messages = [{"role": "system", "content": context}, {"role": "user", "content": text}]
    response = client.post("/chat/completions", json={"model": "m", "messages": messages})
    assert response.status_code == 200, response.text
    return response


def test_no_near_miss_is_served_a_cached_answer(proxy):
    with httpx2.Client(base_url=proxy.base_url, timeout=30) as client:
        for i, (kind, stored, asked) in enumerate(NEAR_MISSES):
            context = f"near-miss {i}"  # one context per pair: it can only meet itself
            assert ask(client, context, stored).headers["x-cache"] == "miss"
            answer = ask(client, context, asked)
            assert answer.headers["x-cache"] == "miss", (kind, stored, asked)


def test_a_rephrasing_is_a_semantic_hit_with_its_stage(proxy):
    with httpx2.Client(base_url=proxy.base_url, timeout=30) as client:
        ask(client, "rephrasing", "How can I learn to play the guitar?")
        hit = ask(client, "rephrasing", "How do I learn to play guitar?")
    assert (hit.headers["x-cache"], hit.headers["x-cache-kind"]) == ("hit", "semantic")
    assert hit.headers["x-cache-stage"] == "cosine"
    assert float(hit.headers["x-cache-similarity"]) >= 0.9
