"""The optional judge of the semantic tier's gray zone, through the router to a fake upstream."""

from __future__ import annotations

import json
import re

import pytest

from asgi_llm import Config
from asgi_llm.config.loader import ConfigError
from tests.cache.conftest import cache_config, inference_calls
from tests.cache.test_semantic import ask, semantic_app
from tests.conftest import upstream_model
from tests.fakes.upstream import Behavior

STORED = "What is the capital city of France?"
GRAY = "Which is the capital city of France?"  # 0.89 with the fake embedder: in [0.8, 0.95)
JUDGE = {"model": "judge", "low": 0.8, "timeout_s": 1.0}
PRICE = {"input_per_mtok": 10.0, "output_per_mtok": 0.0}


def verdict(word: str) -> Behavior:
    usage = {"prompt_tokens": 100, "completion_tokens": 1, "total_tokens": 101}
    return Behavior(
        body=json.dumps(
            {
                "id": "chatcmpl-judge",
                "object": "chat.completion",
                "created": 1,
                "model": "judge-upstream",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": word}, "finish_reason": "stop"}
                ],
                "usage": usage,
            }
        ).encode()
    )


def judged_app(upstream, **judge):
    judge_model = upstream_model("judge", upstream.base_url, cost=PRICE)
    top = {"metrics": {"prometheus": {"path": "/metrics"}}}
    app, cache, embedder = semantic_app(
        upstream, threshold=0.95, semantic={"judge": {**JUDGE, **judge}}, top=top, extra_models=[judge_model]
    )
    return app, cache


def cost_of_model_m(text: str) -> float:
    return sum(float(v) for v in re.findall(r'cost_usd_total\{[^}]*model="m"[^}]*\} ([0-9.e+-]+)', text))


def judge_prompts(upstream) -> list[str]:
    bodies = [json.loads(r.body) for r in upstream.requests if r.method == "POST"]
    return [b["messages"][-1]["content"] for b in bodies if b["model"] == "judge-upstream"]


async def test_a_gray_zone_candidate_the_judge_calls_the_same_is_a_hit(asgi_client, upstream):
    app, cache = judged_app(upstream)
    client = asgi_client(app=app)
    await ask(client, STORED)
    upstream.script(verdict("Yes."))
    hit = await ask(client, GRAY)
    assert (hit.headers["x-cache"], hit.headers["x-cache-kind"]) == ("hit", "semantic")
    assert hit.headers["x-cache-stage"] == "judge"
    assert 0.8 <= float(hit.headers["x-cache-similarity"]) < 0.95
    (prompt,) = judge_prompts(upstream)
    assert STORED in prompt and GRAY in prompt
    assert inference_calls(upstream) == 2  # the stored answer, and the judge: no second answer
    assert cost_of_model_m((await client.get("/metrics")).text) == pytest.approx(100 * 10.0 / 1e6)
    assert (cache.judge.calls, cache.judge.said_yes) == (1, 1)


@pytest.mark.parametrize(
    "answer",
    [verdict("no"), verdict("Not sure"), Behavior(status=500), Behavior(delay_s=3.0)],
    ids=["no", "unsure", "error", "timeout"],
)
async def test_anything_but_yes_from_the_judge_is_a_miss(asgi_client, upstream, answer):
    app, cache = judged_app(upstream)
    client = asgi_client(app=app)
    await ask(client, STORED)
    upstream.script(answer)
    miss = await ask(client, GRAY)
    assert miss.headers["x-cache"] == "miss" and "x-cache-stage" not in miss.headers
    assert len(judge_prompts(upstream)) == 1 and inference_calls(upstream) == 3
    assert cache.judge.said_yes == 0


async def test_a_judged_miss_costs_the_judge_and_the_answer(asgi_client, upstream):
    app, _ = judged_app(upstream)
    client = asgi_client(app=app)
    await ask(client, STORED)
    before = cost_of_model_m((await client.get("/metrics")).text)
    upstream.script(verdict("no"))
    await ask(client, GRAY)
    after = cost_of_model_m((await client.get("/metrics")).text)
    assert after - before == pytest.approx(100 * 10.0 / 1e6)  # m itself is free here: the judge's part


async def test_the_judge_is_not_asked_above_the_threshold_nor_past_a_guard(asgi_client, upstream):
    app, cache = judged_app(upstream, low=0.5)
    client = asgi_client(app=app)
    await ask(client, STORED)
    assert (await ask(client, "What is the capital city of France ?")).headers["x-cache-stage"] == "cosine"
    vetoed = await ask(client, "What was the capital city of France in 1900?")  # numbers differ
    assert vetoed.headers["x-cache"] == "miss"
    assert judge_prompts(upstream) == [] and cache.judge.calls == 0


def test_the_judge_must_be_a_served_model_under_the_threshold(upstream):
    def load(judge, threshold=0.9):
        config = cache_config(upstream, semantic={"enabled": True, "threshold": threshold, "judge": judge})
        return Config.from_dict(config)

    assert load({"model": "other"}).cache.semantic.judge.low == 0.8
    with pytest.raises(ConfigError, match=r"cache.semantic.judge.model: .*unknown model 'nope'"):
        load({"model": "nope"})
    with pytest.raises(ConfigError, match=r"cache.semantic.judge.low: must be under the threshold \(0.8\)"):
        load({"model": "other"}, threshold=0.8)
