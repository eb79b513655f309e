"""Two real `asgi-llm serve` processes sharing one Redis cache, spoken to by the openai SDK."""

from __future__ import annotations

import concurrent.futures

import httpx2
import openai
import pytest
import redis

from tests.cache.conftest import KEYS, bearer, cache_config, inference_calls
from tests.fakes.upstream import Behavior
from tests.harness import ProxyServer

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def fleet_redis(redis_available, tmp_path_factory):
    import os

    prefix = f"test:fleet:{os.urandom(4).hex()}"
    url = f"{redis_available}/2"
    yield url, prefix
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def fleet(upstream_server, fleet_redis, tmp_path_factory):
    url, prefix = fleet_redis
    config = cache_config(upstream_server, auth=True, backend=url, key_prefix=prefix)
    workdir = tmp_path_factory.mktemp("fleet")
    with ProxyServer(config, workdir) as a, ProxyServer(config, workdir) as b:
        yield a, b


def sdk(server: ProxyServer, who: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=KEYS[who], max_retries=0, timeout=20)


def test_a_miss_on_one_replica_is_a_hit_on_the_other_both_ways(fleet, upstream):
    a, b = fleet
    with sdk(a, "ann") as on_a, sdk(b, "ann") as on_b:
        question = [{"role": "user", "content": "fleet: stream first"}]
        streamed = list(on_a.chat.completions.create(model="m", messages=question, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "tok0 tok1 tok2 "
        raw = on_b.chat.completions.with_raw_response.create(model="m", messages=question)
        assert raw.headers["x-cache"] == "hit" and raw.headers["x-cache-kind"] == "exact"
        assert raw.parse().choices[0].message.content == "tok0 tok1 tok2 "

        question = [{"role": "user", "content": "fleet: plain first"}]
        on_a.chat.completions.create(model="m", messages=question)
        stream = on_b.chat.completions.with_raw_response.create(
            model="m", messages=question, stream=True, stream_options={"include_usage": True}
        )
        assert stream.headers["x-cache"] == "hit"
        chunks = list(stream.parse())
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "tok0 tok1 tok2 "
        assert chunks[-1].usage.completion_tokens == 3 and chunks[-1].choices == []
    assert inference_calls(upstream) == 2


def test_sdk_reads_a_replayed_tool_call(fleet, upstream):
    a, b = fleet
    call = (
        b'{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
        b'"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":'
        b'"function","function":{"name":"get_weather","arguments":"{\\"city\\":\\"Paris\\"}"}}]},'
        b'"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":7,'
        b'"total_tokens":12}}'
    )
    upstream.script(Behavior(body=call))
    question = [{"role": "user", "content": "weather in Paris?"}]
    with sdk(a, "ann") as on_a, sdk(b, "ann") as on_b:
        first = on_a.chat.completions.create(model="m", messages=question, tools=TOOLS)
        assert first.choices[0].message.tool_calls[0].function.name == "get_weather"
        stream = on_b.chat.completions.create(model="m", messages=question, tools=TOOLS, stream=True)
        calls = [c.choices[0].delta.tool_calls for c in stream if c.choices and c.choices[0].delta.tool_calls]
    assert calls[0][0].function.arguments == '{"city":"Paris"}' and calls[0][0].id == "call_1"
    assert inference_calls(upstream) == 1


def test_tenant_isolation_across_replicas(fleet, upstream):
    a, b = fleet
    question = [{"role": "user", "content": "fleet: tenant secret"}]
    with sdk(a, "ann") as ann, sdk(b, "ben") as ben, sdk(b, "amy") as amy:
        ann.chat.completions.create(model="m", messages=question)
        assert (
            ben.chat.completions.with_raw_response.create(model="m", messages=question).headers["x-cache"]
            == "miss"
        )
        assert (
            amy.chat.completions.with_raw_response.create(model="m", messages=question).headers["x-cache"]
            == "hit"
        )
    assert inference_calls(upstream) == 2


def test_single_flight_across_two_replicas(fleet, upstream):
    a, b = fleet
    upstream.default = Behavior(delay_s=0.5)
    body = {"model": "m", "messages": [{"role": "user", "content": "fleet: everyone at once"}]}

    def ask(i: int) -> httpx2.Response:
        server = (a, b)[i % 2]
        return httpx2.post(
            server.base_url + "/chat/completions", json=body, headers=bearer("ann"), timeout=20
        )

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(ask, range(20)))
    assert all(r.status_code == 200 for r in responses)
    assert inference_calls(upstream) == 1
    assert sum(r.headers["x-cache"] == "hit" for r in responses) == 19


def test_corrupt_redis_values_read_as_misses(fleet, fleet_redis, upstream):
    a, _ = fleet
    url, prefix = fleet_redis
    body = {"model": "m", "messages": [{"role": "user", "content": "fleet: corrupt me"}]}
    httpx2.post(a.base_url + "/chat/completions", json=body, headers=bearer("ann"))
    client = redis.Redis.from_url(url)
    try:
        keys = [k for k in client.scan_iter(match=f"{prefix}:e:*") if k]
        for key in keys:
            client.set(key, b"\x80\x04\x95 pickle opcodes, not JSON", ex=60)
    finally:
        client.close()
    again = httpx2.post(a.base_url + "/chat/completions", json=body, headers=bearer("ann"))
    assert again.status_code == 200 and again.headers["x-cache"] == "miss"


def test_purge_through_the_admin_api(fleet, upstream):
    a, b = fleet
    body = {"model": "m", "messages": [{"role": "user", "content": "fleet: purge me"}]}
    httpx2.post(a.base_url + "/chat/completions", json=body, headers=bearer("ann"))
    assert (
        httpx2.post(b.base_url + "/chat/completions", json=body, headers=bearer("ann")).headers["x-cache"]
        == "hit"
    )
    refused = httpx2.request("DELETE", b.root_url + "/admin/cache?namespace=team-a", headers=bearer("ann"))
    assert refused.status_code == 403
    purged = httpx2.request("DELETE", b.root_url + "/admin/cache?namespace=team-a", headers=bearer("root"))
    assert purged.status_code == 200 and purged.json()["purged"] >= 1
    assert (
        httpx2.post(a.base_url + "/chat/completions", json=body, headers=bearer("ann")).headers["x-cache"]
        == "miss"
    )
