"""An upstream that times out leaves nothing in the cache (THREATS C3): the next identical
request goes upstream again."""

from __future__ import annotations

import pytest

from tests.cache.conftest import cache_config, chat, inference_calls
from tests.conftest import assert_error_shape
from tests.fakes.upstream import Behavior

URL = "/v1/chat/completions"


def timing_out_config(upstream, **limits):
    config = cache_config(upstream)
    deployment = config["models"][0]["deployments"][0]
    deployment.update(limits)
    return config


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_a_first_byte_timeout_is_not_stored(asgi_client, upstream, stream):
    client = asgi_client(timing_out_config(upstream, first_byte_timeout_s=0.3))
    upstream.script(Behavior(delay_s=1.0))
    timed_out = await client.post(URL, json=chat(stream=stream))
    assert_error_shape(timed_out, 504, "first_token_timeout")
    again = await client.post(URL, json=chat(stream=stream))
    assert again.status_code == 200 and again.headers["x-cache"] == "miss"
    assert inference_calls(upstream) == 2
    assert (await client.post(URL, json=chat(stream=stream))).headers["x-cache"] == "hit"


async def test_a_stream_that_times_out_midway_is_not_stored(asgi_client, upstream):
    client = asgi_client(timing_out_config(upstream, idle_timeout_s=0.2, first_byte_timeout_s=2))
    upstream.script(Behavior(chunks=4, chunk_delay_s=0.4))  # 0.4 s between chunks > 0.2 s idle
    cut = await client.post(URL, json=chat(stream=True))
    assert "stream_timeout" in cut.text and "[DONE]" not in cut.text
    again = await client.post(URL, json=chat(stream=True))
    assert again.headers["x-cache"] == "miss" and again.text.rstrip().endswith("[DONE]")
    assert inference_calls(upstream) == 2
