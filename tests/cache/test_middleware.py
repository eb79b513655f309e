"""CacheMiddleware in process (full stack over a real fake upstream): what is stored, what hits."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from asgi_llm import Config, build_app
from asgi_llm.cache import CacheMiddleware
from asgi_llm.cache.keys import cache_key
from tests.cache.conftest import bearer, cache_config, chat, inference_calls
from tests.conftest import assert_error_shape
from tests.fakes.upstream import Behavior

URL = "/v1/chat/completions"


def find_cache(app) -> CacheMiddleware:
    layer = app
    while not isinstance(layer, CacheMiddleware):
        layer = layer.app
    return layer


async def test_miss_then_exact_hit_without_upstream_call(asgi_client, upstream):
    client = asgi_client(cache_config(upstream))
    first = await client.post(URL, json=chat())
    second = await client.post(URL, json=chat())
    assert first.headers["x-cache"] == "miss" and "x-cache-kind" not in first.headers
    assert second.headers["x-cache"] == "hit" and second.headers["x-cache-kind"] == "exact"
    assert second.json() == first.json()
    assert "x-llm-deployment" not in second.headers  # no deployment was called
    assert inference_calls(upstream) == 1


async def test_no_cache_section_means_no_cache(asgi_client, upstream):
    config = cache_config(upstream)
    del config["cache"]
    client = asgi_client(config)
    for _ in range(2):
        response = await client.post(URL, json=chat())
        assert response.status_code == 200 and "x-cache" not in response.headers
    assert inference_calls(upstream) == 2


async def test_alias_and_spelling_share_the_resolved_model_entry(asgi_client, upstream):
    client = asgi_client(cache_config(upstream))
    await client.post(URL, json=chat())
    assert (await client.post(URL, json={**chat(), "model": "m-alias"})).headers["x-cache"] == "hit"
    assert (await client.post(URL, json={**chat(), "model": "other"})).headers["x-cache"] == "miss"


async def test_streamed_miss_is_stored_and_answers_a_plain_request(asgi_client, upstream):
    client = asgi_client(cache_config(upstream))
    streamed = await client.post(URL, json=chat(stream=True))
    assert streamed.headers["x-cache"] == "miss"
    assert streamed.text.rstrip().endswith("data: [DONE]")
    plain = await client.post(URL, json=chat())
    assert plain.headers["x-cache"] == "hit"
    body = plain.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "tok0 tok1 tok2 "}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 3
    assert inference_calls(upstream) == 1


async def test_plain_miss_answers_a_stream_as_sse_with_usage_when_asked(asgi_client, upstream):
    client = asgi_client(cache_config(upstream))
    await client.post(URL, json=chat())
    hit = await client.post(URL, json=chat(stream=True, stream_options={"include_usage": True}))
    assert hit.headers["x-cache"] == "hit"
    assert hit.headers["content-type"].startswith("text/event-stream")
    events = [e for e in hit.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    chunks = [orjson.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert (
        "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        == "tok0 tok1 tok2 "
    )
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    no_usage = await client.post(URL, json=chat(stream=True))
    assert '"usage"' not in no_usage.text


async def test_usage_of_a_hit_is_set_aside_not_charged(asgi_client, upstream):
    seen = []

    async def outer(scope, receive, send):
        await app(scope, receive, send)
        if scope["type"] == "http":  # the lifespan scope at teardown has no request context
            seen.append(scope["state"]["llm"])

    app = build_app(Config.from_dict(cache_config(upstream)))
    client = asgi_client(app=outer)
    await client.post(URL, json=chat())
    await client.post(URL, json=chat())
    miss, hit = seen
    assert miss.usage is not None and miss.cache_status == "miss"
    assert hit.usage is None and hit.cached_usage.completion_tokens == 3
    assert hit.cost_usd == 0.0


async def test_no_store_no_cache_and_ttl_headers(asgi_client, upstream):
    client = asgi_client(cache_config(upstream))
    r = await client.post(URL, json=chat(), headers={"cache-control": "no-store"})
    assert r.headers["x-cache"] == "bypass"
    assert (await client.post(URL, json=chat(), headers={"x-cache-ttl": "0"})).headers["x-cache"] == "miss"
    # nothing was stored by either
    r = await client.post(URL, json=chat(), headers={"cache-control": "no-cache", "x-cache-ttl": "0.4"})
    assert r.headers["x-cache"] == "miss"  # skipped the lookup, but stored for 0.4 s
    assert (await client.post(URL, json=chat())).headers["x-cache"] == "hit"
    fresh = await client.post(URL, json=chat(), headers={"cache-control": "no-cache"})
    assert fresh.headers["x-cache"] == "miss"
    assert inference_calls(upstream) == 4


async def test_entry_expires_after_its_ttl(asgi_client, upstream):
    client = asgi_client(cache_config(upstream, ttl_s=0.3))
    await client.post(URL, json=chat())
    assert (await client.post(URL, json=chat())).headers["x-cache"] == "hit"
    await asyncio.sleep(0.45)  # the 0.3 s TTL runs out
    assert (await client.post(URL, json=chat())).headers["x-cache"] == "miss"


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "1e99"])
async def test_a_bad_ttl_header_is_a_400(asgi_client, upstream, value):
    client = asgi_client(cache_config(upstream))
    response = await client.post(URL, json=chat(), headers={"x-cache-ttl": value})
    assert_error_shape(response, 400, "invalid_cache_header")
    assert inference_calls(upstream) == 0


@pytest.mark.parametrize(
    "behavior",
    [
        Behavior(status=500),
        Behavior(status=429),
        Behavior(status=400),
        Behavior(
            body=b'{"id":"x","object":"chat.completion","choices":[{"index":0,"message":'
            b'{"role":"assistant","content":"partial"},"finish_reason":"content_filter"}]}'
        ),
        Behavior(
            body=b'{"id":"x","object":"chat.completion","choices":[{"index":0,"message":'
            b'{"role":"assistant","content":""},"finish_reason":"stop"}]}'
        ),
        Behavior(chunks=0),
    ],
    ids=["500", "429", "400", "content_filter", "empty", "no-content"],
)
async def test_failures_filtered_and_empty_answers_are_not_stored(asgi_client, upstream, behavior):
    client = asgi_client(cache_config(upstream))
    upstream.script(behavior)
    await client.post(URL, json=chat())
    again = await client.post(URL, json=chat())
    assert again.status_code == 200 and again.headers["x-cache"] == "miss"
    assert inference_calls(upstream) == 2


@pytest.mark.parametrize(
    "behavior",
    [Behavior(chunks=6, cut_after=2), Behavior(chunks=3, cut_after=3)],
    ids=["cut-midway", "no-done"],
)
async def test_a_cut_stream_is_not_stored(asgi_client, upstream, behavior):
    client = asgi_client(cache_config(upstream))
    upstream.script(behavior)
    broken = await client.post(URL, json=chat(stream=True))
    assert "stream_interrupted" in broken.text and "[DONE]" not in broken.text
    assert (await client.post(URL, json=chat(stream=True))).headers["x-cache"] == "miss"
    assert (await client.post(URL, json=chat(stream=True))).headers["x-cache"] == "hit"


async def test_a_streamed_content_filter_is_not_stored(asgi_client, upstream):
    event = (
        b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":'
        b'{"content":"no"},"finish_reason":"content_filter"}]}\n\ndata: [DONE]\n\n'
    )
    client = asgi_client(cache_config(upstream))
    upstream.script(Behavior(body=event, content_type="text/event-stream"))
    await client.post(URL, json=chat(stream=True))
    assert (await client.post(URL, json=chat(stream=True))).headers["x-cache"] == "miss"


async def test_temperature_rule_for_sampled_requests(asgi_client, upstream):
    client = asgi_client(cache_config(upstream, max_temperature=0.2))
    for body in (chat(), chat(temperature=0.9)):
        assert (await client.post(URL, json=body)).headers["x-cache"] == "bypass"
    for body in (chat(temperature=0), chat(temperature=1.5, seed=7)):
        assert (await client.post(URL, json=body)).headers["x-cache"] == "miss"
        assert (await client.post(URL, json=body)).headers["x-cache"] == "hit"


async def test_embeddings_and_completions_are_cached_too(asgi_client, upstream):
    client = asgi_client(cache_config(upstream))
    embedding = {"model": "m", "input": ["alpha", "beta"]}
    completion = {"model": "m", "prompt": "Once upon a time", "max_tokens": 5}
    for path, body in (("/v1/embeddings", embedding), ("/v1/completions", completion)):
        first = await client.post(path, json=body)
        second = await client.post(path, json=body)
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
        assert second.json() == first.json()
    streamed = await client.post("/v1/completions", json={**completion, "stream": True})
    assert streamed.headers["x-cache"] == "hit" and '"text":"tok0 tok1 tok2 "' in streamed.text
    assert inference_calls(upstream) == 2


async def test_tenants_never_share_entries_by_default(asgi_client, upstream):
    client = asgi_client(cache_config(upstream, auth=True))
    assert (await client.post(URL, json=chat(), headers=bearer("ann"))).headers["x-cache"] == "miss"
    assert (await client.post(URL, json=chat(), headers=bearer("ben"))).headers["x-cache"] == "miss"
    # same tenant, another key: shared
    assert (await client.post(URL, json=chat(), headers=bearer("amy"))).headers["x-cache"] == "hit"
    assert inference_calls(upstream) == 2


async def test_namespace_by_key_and_global(asgi_client, upstream):
    by_key = asgi_client(cache_config(upstream, auth=True, namespace_by="key"))
    await by_key.post(URL, json=chat(), headers=bearer("ann"))
    assert (await by_key.post(URL, json=chat(), headers=bearer("amy"))).headers["x-cache"] == "miss"
    shared = asgi_client(cache_config(upstream, auth=True, namespace_by="global"))
    await shared.post(URL, json=chat(), headers=bearer("ann"))
    assert (await shared.post(URL, json=chat(), headers=bearer("ben"))).headers["x-cache"] == "hit"


async def test_no_key_material_in_cache_headers(asgi_client, upstream):
    client = asgi_client(cache_config(upstream))
    await client.post(URL, json=chat())
    hit = await client.post(URL, json=chat())
    cache_headers = {k: v for k, v in hit.headers.items() if "cache" in k}
    assert set(cache_headers) == {"x-cache", "x-cache-kind"}  # no key hash to probe with (C1)


async def test_a_corrupt_or_foreign_entry_reads_as_a_miss(asgi_client, upstream):
    app = build_app(Config.from_dict(cache_config(upstream)))
    cache = find_cache(app)
    client = asgi_client(app=app)
    settings = cache.configs.current.cache
    key = cache_key("global", "m", "chat", chat())
    other = cache_key("global", "m", "chat", chat("something else"))
    foreign = orjson.dumps(
        {
            "v": 1,
            "d": other.digest,
            "e": "chat",
            "t": 0,
            "r": {"choices": [{"message": {"content": "wrong"}}]},
        }
    )
    for raw in (b"\x80\x04\x95garbage", b"[]", foreign, b'{"v":1,"d":"' + key.digest.encode() + b'"}'):
        await cache.store.set(key.storage_key(settings.key_prefix), raw, 60)
        response = await client.post(URL, json=chat())
        assert response.headers["x-cache"] == "miss" and "wrong" not in response.text
        await cache.purge()
    assert cache.stats.bad_entries == 4


async def test_purge_by_namespace_model_or_all(asgi_client, upstream):
    app = build_app(Config.from_dict(cache_config(upstream, auth=True)))
    cache = find_cache(app)
    client = asgi_client(app=app)

    async def fill() -> None:
        for who in ("ann", "ben"):
            for model in ("m", "other"):
                await client.post(URL, json={**chat(), "model": model}, headers=bearer(who))

    await fill()
    assert await cache.purge(namespace="team-a") == 2
    assert await cache.purge(namespace="tenant:team-b", model="other") == 1
    assert await cache.purge(model="m-alias") == 1  # the alias names model m
    await fill()
    assert await cache.purge() == 4


async def test_single_flight_100_identical_misses_make_one_upstream_call(asgi_client, upstream):
    upstream.default = Behavior(delay_s=0.3)
    client = asgi_client(cache_config(upstream))
    responses = await asyncio.gather(*(client.post(URL, json=chat()) for _ in range(100)))
    assert all(r.status_code == 200 for r in responses)
    assert inference_calls(upstream) == 1
    kinds = sorted(r.headers["x-cache"] for r in responses)
    assert kinds.count("miss") == 1 and kinds.count("hit") == 99
    assert len({r.text for r in responses}) == 1


async def test_followers_go_upstream_when_the_leader_fails(asgi_client, upstream):
    upstream.script(Behavior(status=400, delay_s=0.2))
    client = asgi_client(cache_config(upstream))
    responses = await asyncio.gather(*(client.post(URL, json=chat()) for _ in range(5)))
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 400]
    assert inference_calls(upstream) <= 5


async def test_redis_down_means_bypass_never_an_error(asgi_client, upstream):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = build_app(Config.from_dict(cache_config(upstream, backend=f"redis://127.0.0.1:{port}/2")))
    seen = []

    async def outer(scope, receive, send):
        await app(scope, receive, send)
        if scope["type"] == "http":  # the lifespan scope at teardown has no request context
            seen.append(scope["state"]["llm"])

    client = asgi_client(app=outer)
    for _ in range(3):
        response = await client.post(URL, json=chat())
        assert response.status_code == 200 and response.headers["x-cache"] == "bypass"
    assert [ctx.cache_bypass for ctx in seen] == ["backend_unavailable"] * 3
    stats = find_cache(app).stats
    assert stats.backend_errors == 1 and stats.bypasses == 3  # backs off after the first failure


async def test_a_hanging_redis_costs_at_most_its_timeout(asgi_client, upstream):
    import time

    accepted = []

    async def hold(reader, writer):  # accepts, never answers: a blackholed Redis
        accepted.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        app = build_app(
            Config.from_dict(cache_config(upstream, backend=f"redis://127.0.0.1:{port}/2", timeout_s=0.2))
        )
        client = asgi_client(app=app)
        started = time.monotonic()
        response = await client.post(URL, json=chat())
        assert response.status_code == 200 and response.headers["x-cache"] == "bypass"
        assert time.monotonic() - started < 1.5
        assert find_cache(app).stats.backend_errors == 1
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("namespace_by", ["tenant", "key"])
async def test_a_per_caller_cache_outside_auth_refuses_to_start(upstream, namespace_by):
    """Outside Auth no caller is known yet: a per-tenant namespace would quietly be one
    namespace for everyone (THREATS C1). Only `global` may sit there (a public cache)."""
    from asgi_llm import AuthMiddleware, ProviderApp, lifespan

    config = Config.from_dict(cache_config(upstream, auth=True, namespace_by=namespace_by))
    app = CacheMiddleware(AuthMiddleware(ProviderApp(config=config), config=config), config=config)
    with pytest.raises(RuntimeError, match="namespace_by: global"):
        async with lifespan(app):
            pass
    public = Config.from_dict(cache_config(upstream, auth=True, namespace_by="global"))
    async with lifespan(
        CacheMiddleware(AuthMiddleware(ProviderApp(config=public), config=public), config=public)
    ):
        pass
