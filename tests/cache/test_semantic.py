"""The semantic tier with a deterministic fake embedder (and, once, the real model)."""

from __future__ import annotations

import asyncio
import hashlib
import re

import numpy as np
import pytest

from asgi_llm import Config, build_app
from asgi_llm.cache import CacheMiddleware
from asgi_llm.cache.embedder import BatchingEmbedder
from asgi_llm.cache.index import ExactIndex
from asgi_llm.cache.semantic import SemanticTier, semantic_parts
from tests.cache.conftest import bearer, cache_config, chat, inference_calls
from tests.waiting import await_until

URL = "/v1/chat/completions"
DIM = 256


class BagOfWords:
    """Deterministic stand-in for a sentence model: hashed word counts, normalized. Texts that
    share most words score high, which is exactly what near-misses do to real models."""

    dim = DIM

    def __init__(self, window: int = 40) -> None:
        self.window = window
        self.calls: list[list[str]] = []
        self.fail = False

    def fits(self, text: str) -> bool:
        return len(text.split()) <= self.window

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.fail:
            raise RuntimeError("embedder down")
        self.calls.append(list(texts))
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower().replace("what's", "what is")):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def semantic_app(
    upstream, embedder=None, *, auth=False, threshold=0.8, semantic=None, top=None, extra_models=(), **cache
):
    settings = {"enabled": True, "threshold": threshold, **(semantic or {})}
    whole = {**cache_config(upstream, auth=auth, **cache, semantic=settings), **(top or {})}
    whole["models"] = [*whole["models"], *extra_models]
    config = Config.from_dict(whole)
    settings = config.cache
    embedder = embedder or BagOfWords()
    tier = SemanticTier(
        settings,
        BatchingEmbedder(embedder, window_s=0.001, max_batch=16, cache_entries=100),
        ExactIndex(DIM, settings.semantic.max_entries),
    )
    app = build_app(config)
    layer = app
    while not isinstance(layer, CacheMiddleware):
        layer = layer.app
    layer._semantic = tier
    return app, layer, embedder


async def ask(client, content, headers=None, **extra):
    return await client.post(URL, json=chat(content, **extra), headers=headers or {})


async def test_a_paraphrase_is_a_semantic_hit_with_its_similarity(asgi_client, upstream):
    app, cache, _ = semantic_app(upstream)
    client = asgi_client(app=app)
    first = await ask(client, "What is the capital city of France?")
    hit = await ask(client, "What's the capital city of France?")
    assert first.headers["x-cache"] == "miss"
    assert hit.headers["x-cache"] == "hit" and hit.headers["x-cache-kind"] == "semantic"
    assert 0.8 <= float(hit.headers["x-cache-similarity"]) <= 1.0
    assert hit.json() == first.json()
    assert inference_calls(upstream) == 1 and cache.stats.hits["semantic"] == 1


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("Is it safe to eat raw eggs during pregnancy?", "Is it not safe to eat raw eggs during pregnancy?"),
        ("What was the revenue of Acme in 2022?", "What was the revenue of Acme in 2023?"),
        (
            "Cheapest flights from New York to London in May",
            "Cheapest flights from London to New York in May",
        ),
        ("How many legs does a spider have, 6 or 8?", "How many legs does a spider have, 8 or 10?"),
        ("Should I buy Tesla stock this week?", "Should I sell Tesla stock this week?"),
        ("Summarize the history of Paris for a tourist", "Summarize the history of Rome for a tourist"),
    ],
    ids=["negation", "year", "order", "numbers", "antonym", "entity"],
)
async def test_near_misses_never_hit(asgi_client, upstream, stored, asked):
    app, cache, embedder = semantic_app(upstream, threshold=0.7)
    client = asgi_client(app=app)
    await ask(client, stored)
    response = await ask(client, asked)
    assert response.headers["x-cache"] == "miss"
    similarity = float((embedder.embed([stored]) @ embedder.embed([asked]).T)[0, 0])
    assert similarity >= 0.7, "the fake must score this near-miss above the threshold"
    assert sum(cache.semantic.vetoes.values()) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.5},
        {"model": "other"},
        {"max_tokens": 7},
        {
            "messages": [
                {"role": "system", "content": "Answer in French."},
                {"role": "user", "content": "What's the capital city of France?"},
            ]
        },
    ],
    ids=["temperature", "model", "max_tokens", "system-prompt"],
)
async def test_only_the_same_context_can_hit(asgi_client, upstream, change):
    app, _, _ = semantic_app(upstream)
    client = asgi_client(app=app)
    await ask(client, "What is the capital city of France?")
    body = {**chat("What's the capital city of France?"), **change}
    assert (await client.post(URL, json=body)).headers["x-cache"] == "miss"


async def test_earlier_turns_are_context(asgi_client, upstream):
    app, _, _ = semantic_app(upstream)
    client = asgi_client(app=app)

    def convo(first: str, last: str) -> dict:
        return {
            "model": "m",
            "messages": [
                {"role": "user", "content": first},
                {"role": "assistant", "content": "Sure."},
                {"role": "user", "content": last},
            ],
        }

    await client.post(URL, json=convo("Talk about cats", "What is their average lifespan?"))
    other = await client.post(URL, json=convo("Talk about dogs", "What's their average lifespan?"))
    same = await client.post(URL, json=convo("Talk about cats", "What's their average lifespan?"))
    assert (other.headers["x-cache"], same.headers["x-cache"]) == ("miss", "hit")


async def test_tenants_are_separate_in_the_semantic_tier(asgi_client, upstream):
    app, _, _ = semantic_app(upstream, auth=True)
    client = asgi_client(app=app)
    await ask(client, "What is the capital city of France?", bearer("ann"))
    again = "What's the capital city of France?"
    assert (await ask(client, again, bearer("ben"))).headers["x-cache"] == "miss"
    assert (await ask(client, again, bearer("amy"))).headers["x-cache"] == "hit"


async def test_threshold_per_request(asgi_client, upstream):
    app, _, _ = semantic_app(upstream)
    client = asgi_client(app=app)
    await ask(client, "What is the capital city of France?")
    strict = await ask(client, "Which is the capital city of France?", {"x-cache-threshold": "0.95"})
    assert strict.headers["x-cache"] == "miss"
    relaxed = await ask(client, "Tell me: what is the capital city of France?")
    assert relaxed.headers["x-cache-kind"] == "semantic"


async def test_long_prompts_skip_the_semantic_tier(asgi_client, upstream):
    embedder = BagOfWords(window=12)
    app, _, _ = semantic_app(upstream, embedder)
    client = asgi_client(app=app)
    shared = "word " * 20
    await ask(client, shared + "ending one")
    assert (await ask(client, shared + "ending two")).headers["x-cache"] == "miss"
    assert not any(len(t.split()) > 12 for call in embedder.calls for t in call)


async def test_a_failing_embedder_only_bypasses_the_semantic_tier(asgi_client, upstream):
    embedder = BagOfWords()
    embedder.fail = True
    app, cache, _ = semantic_app(upstream, embedder)
    client = asgi_client(app=app)
    assert (await ask(client, "What is the capital city of France?")).status_code == 200
    assert (await ask(client, "What is the capital city of France?")).headers["x-cache"] == "hit"
    assert (await ask(client, "What's the capital city of France?")).headers["x-cache"] == "miss"
    assert cache.semantic.embed_failures >= 2


async def test_semantic_is_off_unless_enabled(asgi_client, upstream):
    client = asgi_client(cache_config(upstream))
    await ask(client, "What is the capital city of France?")
    assert (await ask(client, "What's the capital city of France?")).headers["x-cache"] == "miss"


async def test_purge_reaches_the_semantic_index(asgi_client, upstream):
    app, cache, _ = semantic_app(upstream)
    client = asgi_client(app=app)
    await ask(client, "What is the capital city of France?")
    await cache.purge(model="m")
    assert len(cache.semantic.index) == 0
    assert (await ask(client, "What's the capital city of France?")).headers["x-cache"] == "miss"


async def test_concurrent_questions_are_embedded_in_batches(upstream):
    embedder = BagOfWords()
    front = BatchingEmbedder(embedder, window_s=0.01, max_batch=64, cache_entries=100)
    texts = [f"question number {i}" for i in range(20)]
    vectors = await asyncio.gather(*(front.embed(t) for t in texts + texts))
    assert len(embedder.calls) == 1 and len(embedder.calls[0]) == 20
    assert np.allclose(vectors[0], vectors[20])
    await front.embed(texts[0])  # from the embedding cache
    assert len(embedder.calls) == 1
    await front.aclose()


async def test_replicas_share_semantic_entries_through_redis(asgi_client, upstream, redis_url):
    from asgi_llm.cache.sync import FleetSync

    url, prefix = redis_url
    replicas = []
    for _ in range(2):
        app, cache, _ = semantic_app(upstream, backend=url, key_prefix=prefix)
        cache.semantic.sync = FleetSync(url, f"{prefix}:sem", 1000)
        await cache.semantic.start()
        replicas.append((asgi_client(app=app), cache))
    (a, cache_a), (b, cache_b) = replicas
    await ask(a, "What is the capital city of France?")
    await await_until(lambda: len(cache_b.semantic.index), message="the entry indexed on replica b")
    hit = await ask(b, "What's the capital city of France?")
    assert hit.headers["x-cache"] == "hit" and hit.headers["x-cache-kind"] == "semantic"
    assert inference_calls(upstream) == 1
    await cache_b.purge(namespace="global")
    await await_until(lambda: len(cache_a.semantic.index) == 0, message="the purge to reach replica a")


def test_what_is_embedded():
    assert semantic_parts("chat", chat("Hi there")) == (
        "Hi there",
        {**chat(), "messages": [{"role": "user", "content": None}]},
    )
    image = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "x"}},
                ],
            }
        ],
    }
    assert semantic_parts("chat", image) is None
    assert semantic_parts("embeddings", {"model": "m", "input": "x"}) is None
    assert semantic_parts("completions", {"model": "m", "prompt": "Once"})[0] == "Once"
    tool_turn = {"model": "m", "messages": [{"role": "tool", "content": "42", "tool_call_id": "c"}]}
    assert semantic_parts("chat", tool_turn) is None
