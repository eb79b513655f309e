"""RouterMiddleware against real fake upstreams: failover, cooldowns, budget, strategies,
capabilities, fallbacks."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter

import pytest

from asgi_llm.auth.keys import hash_key
from tests.conftest import assert_error_shape
from tests.fakes.upstream import Behavior, FakeUpstream

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def ups():
    with FakeUpstream("u0") as a, FakeUpstream("u1") as b, FakeUpstream("u2") as c:
        yield [a, b, c]


@pytest.fixture(autouse=True)
def reset(ups):
    for up in ups:
        up.reset()
        up.default = Behavior()


def dep(up, name, **extra):
    return {
        "id": name,
        "provider": "openai-compatible",
        "model": "m",
        "base_url": up.base_url,
        "api_key": "sk-up",
        **extra,
    }


async def chat(client, model="m", **extra):
    return await client.post("/v1/chat/completions", json={"model": model, "messages": USER, **extra})


async def test_failover_in_order_with_attempt_count(asgi_client, ups):
    ups[0].default = Behavior(status=500)
    ups[1].default = Behavior(status=503)
    client = asgi_client(
        {
            "models": [{"name": "m", "deployments": [dep(ups[0], "a"), dep(ups[1], "b"), dep(ups[2], "c")]}],
            "routing": {"retries": 2},
        }
    )
    response = await chat(client)
    assert response.status_code == 200
    assert response.headers["x-llm-deployment"] == "c"
    assert response.headers["x-llm-attempts"] == "3"
    assert [len(u.requests) for u in ups] == [1, 1, 1]


async def test_cooldown_skips_a_failing_deployment_then_lets_it_back(asgi_client, ups):
    ups[0].default = Behavior(status=500)
    client = asgi_client(
        {
            "models": [{"name": "m", "deployments": [dep(ups[0], "a"), dep(ups[1], "b")]}],
            "routing": {"cooldown": {"failures": 2, "window_s": 10, "seconds": 0.5}},
        }
    )
    for _ in range(2):
        assert (await chat(client)).headers["x-llm-deployment"] == "b"
    assert len(ups[0].requests) == 2
    for _ in range(5):
        assert (await chat(client)).headers["x-llm-attempts"] == "1"  # "a" is skipped
    assert len(ups[0].requests) == 2
    ups[0].default = Behavior()
    await asyncio.sleep(0.6)  # the 0.5 s cooldown runs out
    assert (await chat(client)).headers["x-llm-deployment"] == "a"


async def test_retry_budget_bounds_attempts_in_a_full_outage(asgi_client, ups):
    for up in ups:
        up.default = Behavior(status=500, delay_s=0.05)
    client = asgi_client(
        {
            "models": [{"name": "m", "deployments": [dep(ups[0], "a"), dep(ups[1], "b"), dep(ups[2], "c")]}],
            "routing": {"retries": 2, "cooldown": {"failures": 1000}},
        }
    )
    responses = await asyncio.gather(*(chat(client) for _ in range(50)))
    assert all(r.status_code == 502 for r in responses)
    attempts = sum(len(u.requests) for u in ups)
    assert attempts < 100, attempts  # without the budget: 150
    assert attempts >= 50


async def test_a_lone_request_still_gets_its_retries(asgi_client, ups):
    for up in ups:
        up.default = Behavior(status=500)
    client = asgi_client(
        {"models": [{"name": "m", "deployments": [dep(ups[0], "a")]}], "routing": {"retries": 2}}
    )
    assert (await chat(client)).status_code == 502
    assert len(ups[0].requests) == 3


async def test_429_retry_after_is_waited_out_when_short(asgi_client, ups):
    ups[0].script(Behavior(status=429, headers={"retry-after": "1"}))
    client = asgi_client({"models": [{"name": "m", "deployments": [dep(ups[0], "a")]}]})
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await chat(client)
    assert response.status_code == 200
    assert 0.9 < loop.time() - started < 3


async def test_429_retry_after_too_long_is_passed_on(asgi_client, ups):
    ups[0].default = Behavior(status=429, headers={"retry-after": "100"})
    client = asgi_client({"models": [{"name": "m", "deployments": [dep(ups[0], "a")]}]})
    response = await chat(client)
    assert_error_shape(response, 429)
    assert response.headers["retry-after"] == "100"
    assert len(ups[0].requests) == 1


async def test_cost_strategy_picks_the_cheapest_capable(asgi_client, ups):
    client = asgi_client(
        {
            "models": [
                {
                    "name": "m",
                    "strategy": "cost",
                    "deployments": [
                        dep(
                            ups[0],
                            "pricey",
                            cost={"input_per_mtok": 5, "output_per_mtok": 15},
                            capabilities=["tools"],
                        ),
                        dep(
                            ups[1],
                            "cheap-no-tools",
                            cost={"input_per_mtok": 0.1, "output_per_mtok": 0.2},
                            capabilities=["vision"],
                        ),
                        dep(
                            ups[2],
                            "mid",
                            cost={"input_per_mtok": 1, "output_per_mtok": 2},
                            capabilities=["tools"],
                        ),
                    ],
                }
            ]
        }
    )
    assert (await chat(client)).headers["x-llm-deployment"] == "cheap-no-tools"
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert (await chat(client, tools=tools)).headers["x-llm-deployment"] == "mid"


async def test_latency_strategy_follows_the_faster_upstream_and_back(asgi_client, ups):
    client = asgi_client(
        {
            "models": [
                {"name": "m", "strategy": "latency", "deployments": [dep(ups[0], "a"), dep(ups[1], "b")]}
            ],
            "routing": {"latency": {"decay_s": 0.5, "explore": 0.1}},
        }
    )
    ups[0].default = Behavior(delay_s=0.12)
    served = [(await chat(client)).headers["x-llm-deployment"] for _ in range(30)]
    assert Counter(served[-15:])["b"] >= 12, served
    ups[0].default, ups[1].default = Behavior(), Behavior(delay_s=0.12)
    served = [(await chat(client)).headers["x-llm-deployment"] for _ in range(40)]
    assert Counter(served[-15:])["a"] >= 12, served


async def test_vision_request_skips_a_text_only_deployment(asgi_client, ups):
    client = asgi_client(
        {
            "models": [
                {
                    "name": "m",
                    "deployments": [
                        dep(ups[0], "text", capabilities=["tools"]),
                        dep(ups[1], "eyes", capabilities=["vision"]),
                    ],
                }
            ]
        }
    )
    image = "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()
    content = [{"type": "text", "text": "what is this"}, {"type": "image_url", "image_url": {"url": image}}]
    response = await client.post(
        "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": content}]}
    )
    assert response.headers["x-llm-deployment"] == "eyes"
    assert (await chat(client)).headers["x-llm-deployment"] == "text"


async def test_long_prompt_skips_a_small_context_deployment(asgi_client, ups):
    client = asgi_client(
        {
            "models": [
                {
                    "name": "m",
                    "deployments": [
                        dep(ups[0], "small", context_window=200),
                        dep(ups[1], "large", context_window=100_000),
                    ],
                }
            ]
        }
    )
    long_prompt = [{"role": "user", "content": "word " * 1000}]
    response = await client.post(
        "/v1/chat/completions", json={"model": "m", "messages": long_prompt, "max_tokens": 10}
    )
    assert response.headers["x-llm-deployment"] == "large"
    assert (await chat(client, max_tokens=10)).headers["x-llm-deployment"] == "small"


async def test_no_capable_deployment_is_a_400(asgi_client, ups):
    client = asgi_client(
        {
            "models": [
                {
                    "name": "m",
                    "deployments": [dep(ups[0], "small", context_window=100, capabilities=["tools"])],
                }
            ]
        }
    )
    response = await client.post(
        "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "word " * 1000}]}
    )
    assert_error_shape(response, 400, "request_exceeds_limit")
    assert len(ups[0].requests) == 0


async def test_fallback_chain_serves_when_the_model_is_down(asgi_client, ups):
    ups[0].default = Behavior(status=500)
    client = asgi_client(
        {
            "models": [
                {"name": "big", "deployments": [dep(ups[0], "big-a")]},
                {"name": "small", "deployments": [dep(ups[1], "small-a")]},
            ],
            "routing": {"retries": 1, "fallbacks": {"big": ["small"]}},
        }
    )
    response = await chat(client, model="big")
    assert response.status_code == 200
    assert response.headers["x-llm-deployment"] == "small-a"
    assert response.headers["x-llm-attempts"] == "2"


async def test_fallback_to_a_model_the_caller_may_not_use_never_reaches_it(asgi_client, ups):
    ups[0].default = Behavior(status=500)
    client = asgi_client(
        {
            "models": [
                {"name": "big", "deployments": [dep(ups[0], "big-a")]},
                {"name": "secret", "deployments": [dep(ups[1], "secret-a")]},
            ],
            "routing": {"retries": 2, "fallbacks": {"big": ["secret"]}},
            "auth": {
                "api_keys": [{"id": "u", "key_sha256": hash_key("sk-user-123"), "roles": ["r"]}],
                "roles": {"r": {"models": ["big"], "endpoints": ["chat"]}},
            },
        }
    )
    response = await client.post(
        "/v1/chat/completions",
        json={"model": "big", "messages": USER},
        headers={"authorization": "Bearer sk-user-123"},
    )
    assert_error_shape(response, 502)
    assert len(ups[1].requests) == 0
