"""RateLimitMiddleware in process: headers, 429/400 shapes, rules per key/tenant/model,
token reservation and settlement, concurrency, budgets, and the admin/metrics surface."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time

import httpx2
import pytest

from asgi_llm import Config, build_app
from asgi_llm.context import RateLimitInfo
from asgi_llm.errors import ConfigError
from asgi_llm.ratelimit import RateLimitMiddleware
from asgi_llm.ratelimit.middleware import format_reset
from asgi_llm.ratelimit.store import STRATEGIES
from tests.conftest import assert_error_shape
from tests.ratelimit.conftest import PROMPT_ESTIMATE, chat, limits_config, priced_mock

HEADERS = [
    f"x-ratelimit-{what}-{kind}"
    for kind in ("requests", "tokens")
    for what in ("limit", "remaining", "reset")
]
RESET = re.compile(r"^(\d+ms|(\d+h)?(\d+m)?\d+(\.\d+)?s)$")
MOCK_USAGE = 2 + 6  # mock-1's usage for "Say hello"


async def post(client, body=None, key: str | None = None, **headers: str):
    if key is not None:
        headers["x-test-key"] = key
    return await client.post("/v1/chat/completions", json=body or chat(), headers=headers)


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_n_per_window_exact_for_each_strategy(stack, storage, prefix, strategy):
    # A generous Redis timeout: on a loaded machine a slow answer would hand admissions to the
    # local fallback (by design, tests/ratelimit/test_degraded.py), which is not what this counts.
    _, client = stack(
        limits_config(
            storage, prefix, strategy=strategy, timeout_s=10, rules=[{"per": "key", "requests": "20/hour"}]
        )
    )
    responses = await asyncio.gather(*[post(client) for _ in range(60)])
    assert sorted(r.status_code for r in responses) == [200] * 20 + [429] * 40


async def test_headers_on_every_llm_response(stack, prefix):
    _, client = stack(
        limits_config(
            "memory://", prefix, rules=[{"per": "key", "requests": "5/minute", "tokens": "10000/minute"}]
        )
    )
    first = await post(client)
    assert first.status_code == 200
    for name in HEADERS:
        assert name in first.headers, name
    assert first.headers["x-ratelimit-limit-requests"] == "5"
    assert first.headers["x-ratelimit-remaining-requests"] == "4"
    assert first.headers["x-ratelimit-limit-tokens"] == "10000"
    assert first.headers["x-ratelimit-remaining-tokens"] == str(10000 - PROMPT_ESTIMATE - 100)
    assert all(RESET.match(first.headers[h]) for h in HEADERS if "reset" in h)


async def test_429_has_the_contract_shape_and_retry_after(stack, prefix):
    _, client = stack(
        limits_config(
            "memory://", prefix, rules=[{"per": "key", "requests": "2/minute", "tokens": "10000/minute"}]
        )
    )
    for _ in range(2):
        assert (await post(client)).status_code == 200
    refused = await post(client)
    error = assert_error_shape(refused, 429, "rate_limit_exceeded")
    assert error["type"] == "rate_limit_error"
    assert "2 per 1 minute" in error["message"]
    retry = refused.headers["retry-after"]
    assert retry.isdigit() and 1 <= int(retry) <= 60
    for name in HEADERS:
        assert name in refused.headers, name
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"


async def test_several_windows_in_one_rule(stack, prefix):
    _, client = stack(
        limits_config("memory://", prefix, rules=[{"per": "key", "requests": "3/second;4/hour"}])
    )
    assert [(await post(client)).status_code for _ in range(4)] == [200, 200, 200, 429]
    await asyncio.sleep(1.05)  # the 3/second window runs out; the hourly one does not
    assert [(await post(client)).status_code for _ in range(2)] == [200, 429]


async def test_each_key_has_its_own_bucket_and_tenants_share_one(stack, prefix):
    _, client = stack(
        limits_config(
            "memory://",
            prefix,
            rules=[{"per": "key", "requests": "2/hour"}, {"per": "tenant", "requests": "3/hour"}],
        )
    )
    alice = [(await post(client, key="alice@team-a")).status_code for _ in range(3)]
    bob = [(await post(client, key="bob@team-a")).status_code for _ in range(2)]
    carol = [(await post(client, key="carol@team-b")).status_code for _ in range(2)]
    assert alice == [200, 200, 429]
    assert bob == [200, 429]  # team-a's 3 are used up
    assert carol == [200, 200]


async def test_model_rules_apply_to_their_model_only(stack, prefix):
    config = limits_config(
        "memory://",
        prefix,
        models=[priced_mock("mock-1"), priced_mock("mock-2")],
        rules=[{"per": "key_model", "model": "mock-2", "requests": "1/hour"}],
    )
    _, client = stack(config)
    assert [(await post(client, chat(model="mock-2"), key="a")).status_code for _ in range(2)] == [200, 429]
    assert (await post(client, chat(model="mock-2"), key="b")).status_code == 200
    first = await post(client, chat(model="mock-1"), key="a")
    assert first.status_code == 200 and "x-ratelimit-limit-requests" not in first.headers


async def test_a_request_that_can_never_fit_is_a_400(stack, prefix):
    _, client = stack(limits_config("memory://", prefix, rules=[{"per": "key", "tokens": "1000/minute"}]))
    error = assert_error_shape(await post(client, chat(max_tokens=5000)), 400, "request_exceeds_limit")
    assert error["param"] == "max_tokens"
    assert (await post(client, chat(max_tokens=500))).status_code == 200


async def test_default_reservation_when_no_max_tokens(stack, prefix):
    _, client = stack(
        limits_config(
            "memory://", prefix, default_max_tokens=300, rules=[{"per": "key", "tokens": "10000/minute"}]
        )
    )
    response = await post(client, chat(max_tokens=None))
    assert response.headers["x-ratelimit-remaining-tokens"] == str(10000 - PROMPT_ESTIMATE - 300)


async def test_implicit_reservation_is_clipped_to_the_window_and_settled(stack, storage, prefix):
    # tokens: 100/minute with default_max_tokens 1024: an implicit cap must not make every
    # request "never fits"; it holds the window while in flight, then real usage is charged.
    _, client = stack(limits_config(storage, prefix, rules=[{"per": "key", "tokens": "100/minute"}]))
    first = await post(client, chat(max_tokens=None))
    assert first.status_code == 200, first.text
    assert first.headers["x-ratelimit-remaining-tokens"] == "0"  # the whole window was held
    second = await post(client, chat(max_tokens=None))
    assert second.status_code == 200, second.text  # settled to usage, so there is room again
    assert int(second.headers["x-ratelimit-remaining-tokens"]) == 0
    # An explicit cap that can never fit is still a 400 naming max_tokens.
    error = assert_error_shape(await post(client, chat(max_tokens=500)), 400, "request_exceeds_limit")
    assert error["param"] == "max_tokens"


async def test_a_prompt_that_alone_exceeds_the_window_is_a_400(stack, prefix):
    _, client = stack(limits_config("memory://", prefix, rules=[{"per": "key", "tokens": "10/minute"}]))
    body = {**chat(max_tokens=None), "messages": [{"role": "user", "content": "word " * 200}]}
    error = assert_error_shape(await post(client, body), 400, "request_exceeds_limit")
    assert error["param"] == "messages"


async def test_tokens_are_settled_against_usage(stack, storage, prefix):
    _, client = stack(limits_config(storage, prefix, rules=[{"per": "key", "tokens": "1000/hour"}]))
    reserve = PROMPT_ESTIMATE + 100
    first = await post(client)
    assert first.headers["x-ratelimit-remaining-tokens"] == str(1000 - reserve)
    second = await post(client)
    # The first request's reservation became its usage (2 prompt + 6 completion tokens).
    assert second.headers["x-ratelimit-remaining-tokens"] == str(1000 - MOCK_USAGE - reserve)


async def test_admitted_reservations_never_exceed_the_token_limit(stack, storage, prefix):
    slow = [
        {
            "name": "mock-1",
            "deployments": [{"id": "m", "provider": "mock", "model": "mock-1", "mock": {"latency_ms": 200}}],
        }
    ]
    _, client = stack(
        limits_config(storage, prefix, models=slow, rules=[{"per": "key", "tokens": "500/hour"}])
    )
    # Each reserves 3 + 200 while in flight: two fit in 500, the other three do not.
    body = chat(max_tokens=200)
    statuses = [r.status_code for r in await asyncio.gather(*[post(client, body) for _ in range(5)])]
    assert sorted(statuses) == [200, 200, 429, 429, 429]
    # Settled at 8 tokens each, the window has room again.
    assert (await post(client, body)).status_code == 200


async def test_concurrency_is_released_on_every_path(stack, storage, prefix):
    config = limits_config(
        storage,
        prefix,
        models=[
            priced_mock(),
            {
                "name": "broken",
                "deployments": [
                    {
                        "id": "b",
                        "provider": "openai-compatible",
                        "model": "x",
                        "base_url": "http://127.0.0.1:9",
                        "connect_timeout_s": 0.5,
                    }
                ],
            },
        ],
        rules=[{"per": "key", "concurrency": 1}],
    )
    _, client = stack({**config, "routing": {"retries": 0}})
    assert (await post(client)).status_code == 200
    assert (await post(client, chat(model="broken"))).status_code == 502
    assert (await post(client, chat(model="no-such-model"))).status_code == 404
    assert (await post(client)).status_code == 200


async def test_concurrency_limits_requests_in_flight(stack, prefix):
    models = [
        {
            "name": "mock-1",
            "deployments": [{"id": "m", "provider": "mock", "model": "mock-1", "mock": {"latency_ms": 200}}],
        }
    ]
    _, client = stack(
        limits_config("memory://", prefix, models=models, rules=[{"per": "key", "concurrency": 2}])
    )
    statuses = sorted(r.status_code for r in await asyncio.gather(*[post(client) for _ in range(5)]))
    assert statuses == [200, 200, 429, 429, 429]


async def test_budget_reached_is_insufficient_quota(stack, storage, prefix):
    # 8 tokens at 10,000 USD per million: 0.08 USD per request.
    config = limits_config(
        storage,
        prefix,
        models=[priced_mock(input_per_mtok=10_000, output_per_mtok=10_000)],
        budgets=[{"per": "tenant", "usd": 0.1, "period": "month"}],
    )
    limiter, client = stack(config)
    assert [(await post(client, key="a@team-a")).status_code for _ in range(2)] == [200, 200]
    refused = await post(client, key="b@team-a")
    error = assert_error_shape(refused, 429, "insufficient_quota")
    assert int(refused.headers["retry-after"]) >= 1
    assert (await post(client, key="c@team-b")).status_code == 200
    report = await limiter.usage_report()
    (budget,) = report["budgets"]
    assert budget["per"] == "tenant" and budget["usd"] == 0.1
    usage = {u["id"]: u for u in budget["usage"]}
    assert usage["team-a"]["spent_usd"] == pytest.approx(0.16)
    assert usage["team-a"]["remaining_usd"] == 0
    assert usage["team-b"]["remaining_usd"] == pytest.approx(0.02)
    assert error["message"] and "team-a" not in error["message"]


async def test_context_tells_metrics_what_happened(prefix):
    cfg = Config.from_dict(
        limits_config(
            "memory://", prefix, rules=[{"per": "key", "requests": "1/hour", "tokens": "1000/hour"}]
        )
    )
    seen = []

    async def terminal(scope, receive, send):
        seen.append(dataclasses.replace(scope["state"]["llm"].ratelimit))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    app = RateLimitMiddleware(terminal, config=cfg)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client:
        await client.post("/v1/chat/completions", json=chat())
        refused = await client.post("/v1/chat/completions", json=chat())
    assert refused.status_code == 429
    assert seen == [RateLimitInfo(reserved_tokens=PROMPT_ESTIMATE + 100, degraded=False, store="memory")]


async def test_without_a_limits_section_nothing_is_added(stack, prefix):
    _, client = stack({"models": [priced_mock()]})
    response = await post(client)
    assert response.status_code == 200
    assert not [h for h in response.headers if h.startswith("x-ratelimit")]


async def test_listing_models_is_not_counted(stack, prefix):
    _, client = stack(limits_config("memory://", prefix, rules=[{"per": "key", "requests": "1/hour"}]))
    for _ in range(3):
        assert (await client.get("/v1/models")).status_code == 200
    assert (await post(client)).status_code == 200


async def test_build_app_mounts_the_layer(asgi_client, prefix):
    config = Config.from_dict(limits_config("memory://", prefix, rules=[{"per": "ip", "requests": "1/hour"}]))
    client = asgi_client(app=build_app(config))
    first = await post(client)
    assert first.status_code == 200 and first.headers["x-ratelimit-limit-requests"] == "1"
    assert_error_shape(await post(client), 429, "rate_limit_exceeded")


def test_format_reset_is_openai_style():
    assert [format_reset(ms) for ms in (0, 250, 1000, 1500, 60_000, 3_723_000)] == [
        "0ms",
        "250ms",
        "1s",
        "1.5s",
        "1m0s",
        "1h2m3s",
    ]


async def test_replica_clock_skew_does_not_move_the_window(stack, redis_url, prefix):
    # Every strategy reads Redis' clock: a replica 30 s ahead counts in the same window.
    config = limits_config(redis_url, prefix, rules=[{"per": "ip", "requests": "5/minute"}])
    _, ahead = stack(config, clock=lambda: time.time() + 30)
    _, normal = stack(config)
    statuses = [(await post(c)).status_code for c in (ahead, normal) * 5]
    assert sorted(statuses) == [200] * 5 + [429] * 5


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"rules": [{"per": "key", "requests": "sixty a minute"}]}, "limits.rules[0].requests"),
        ({"rules": [{"per": "key", "tokens": "0/minute"}]}, "limits.rules[0].tokens"),
        ({"rules": [{"per": "key"}]}, "limits.rules[0]"),
        ({"storage": "memcached://localhost:11211"}, "limits.storage"),
        ({"trusted_proxies": ["10.0.0.0/33"]}, "limits.trusted_proxies"),
    ],
)
def test_bad_limits_config_names_the_field(limits, field):
    with pytest.raises(ConfigError) as info:
        Config.from_dict({"models": [priced_mock()], "limits": limits})
    assert field in str(info.value)
