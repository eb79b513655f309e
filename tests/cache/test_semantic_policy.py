"""Per-model and per-tenant thresholds, the deciding stage in headers and metrics."""

from __future__ import annotations

import re

import pytest

from asgi_llm import Config
from asgi_llm.cache.semantic import STAGES
from asgi_llm.config.loader import ConfigError
from asgi_llm.metrics.record import SEMANTIC_STAGES
from tests.cache.conftest import bearer, cache_config
from tests.cache.test_semantic import ask, semantic_app

STORED = "What is the capital city of France?"
ASKED = "Which is the capital city of France?"  # 6/7 = 0.857 with the fake embedder


async def test_a_semantic_hit_says_its_stage_and_similarity(asgi_client, upstream):
    app, _, _ = semantic_app(upstream)
    client = asgi_client(app=app)
    assert "x-cache-stage" not in (await ask(client, STORED)).headers
    hit = await ask(client, ASKED)
    assert hit.headers["x-cache-kind"] == "semantic"
    assert hit.headers["x-cache-stage"] == "cosine"
    assert 0.8 <= float(hit.headers["x-cache-similarity"]) < 1
    exact = await ask(client, STORED)
    assert exact.headers["x-cache-kind"] == "exact" and "x-cache-stage" not in exact.headers


@pytest.mark.parametrize(
    ("floors", "who", "expected"),
    [
        ({"models": {"m": 0.95}}, None, "miss"),
        ({"models": {"m-alias": 0.95}}, None, "miss"),  # an alias names the model too
        ({"models": {"other": 0.95}}, None, "hit"),
        ({"tenants": {"team-a": 0.95}}, "ann", "miss"),
        ({"tenants": {"team-a": 0.95}}, "ben", "hit"),
        ({"tenants": {"team-b": 0.5}}, "ben", "hit"),  # a floor never loosens the default
    ],
    ids=["model", "alias", "another-model", "tenant", "another-tenant", "low-floor"],
)
async def test_a_stricter_threshold_per_model_or_tenant(asgi_client, upstream, floors, who, expected):
    auth = who is not None
    app, _, _ = semantic_app(upstream, auth=auth, semantic={"thresholds": floors})
    client = asgi_client(app=app)
    headers = bearer(who) if auth else {}
    await ask(client, STORED, headers)
    assert (await ask(client, ASKED, headers)).headers["x-cache"] == expected


async def test_a_request_cannot_go_under_the_models_floor(asgi_client, upstream):
    app, _, _ = semantic_app(upstream, semantic={"thresholds": {"models": {"m": 0.95}}})
    client = asgi_client(app=app)
    await ask(client, STORED)
    loose = await ask(client, ASKED, {"x-cache-threshold": "0.5"})
    assert loose.headers["x-cache"] == "miss"


def test_thresholds_must_name_served_models_and_lie_in_range(upstream):
    def load(thresholds):
        return Config.from_dict(cache_config(upstream, semantic={"enabled": True, "thresholds": thresholds}))

    assert load({"models": {"M-Alias": 0.97}, "tenants": {"acme": 1}}).cache.semantic.thresholds.tenants == {
        "acme": 1
    }
    with pytest.raises(ConfigError, match=r"cache.semantic.thresholds.models.nope.*unknown model 'nope'"):
        load({"models": {"nope": 0.95}})
    with pytest.raises(ConfigError, match=r"thresholds.tenants: .*'acme': a threshold is from 0.5 to 1"):
        load({"tenants": {"acme": 0.2}})


async def test_metrics_count_semantic_lookups_by_stage(asgi_client, upstream):
    app, _, _ = semantic_app(upstream, top={"metrics": {"prometheus": {"path": "/metrics"}}})
    client = asgi_client(app=app)
    await ask(client, STORED)  # nothing stored yet: a miss at the threshold stage
    await ask(client, ASKED)  # a hit
    await ask(client, "What is the capital city of France in 1900?")  # close, but vetoed: numbers
    text = (await client.get("/metrics")).text
    counts = {
        stage: re.search(rf'cache_semantic_decisions_total{{model="m",stage="{stage}"}} ([0-9.]+)', text)
        for stage in STAGES
    }
    assert {stage: float(found.group(1)) for stage, found in counts.items() if found} == {
        "threshold": 1.0,
        "cosine": 1.0,
        "guard": 1.0,
    }


def test_the_metrics_know_every_stage():
    assert frozenset(STAGES) == SEMANTIC_STAGES
