"""The router's filters (asgi_llm/routing/filters.py) read model facts from the packaged
table when a deployment does not say: vision, tools and the context window, through a real
stack to real fake upstreams."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import assert_error_shape
from tests.fakes.upstream import FakeUpstream

IMAGE = "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()
LOOK = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": IMAGE}},
        ],
    }
]
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


@pytest.fixture(scope="module")
def up():
    with FakeUpstream("facts") as fake:
        fake.models += ["gpt-3.5-turbo", "gpt-4o", "whatever-1"]
        yield fake


def dep(up, name, model, **extra):
    return {
        "id": name,
        "provider": "openai",
        "model": model,
        "base_url": up.base_url,
        "api_key": "sk-up",
        **extra,
    }


def config(*deployments):
    return {"models": [{"name": "m", "deployments": list(deployments)}], "routing": {"retries": 0}}


async def chat(client, messages, **extra):
    return await client.post("/v1/chat/completions", json={"model": "m", "messages": messages, **extra})


async def test_the_table_says_which_models_see_images(asgi_client, up):
    client = asgi_client(config(dep(up, "old", "gpt-3.5-turbo"), dep(up, "eyes", "gpt-4o")))
    assert (await chat(client, LOOK)).headers["x-llm-deployment"] == "eyes"
    text = [{"role": "user", "content": "hi"}]
    assert (await chat(client, text, tools=TOOLS)).headers["x-llm-deployment"] == "old"


async def test_a_deployments_own_capabilities_win_over_the_table(asgi_client, up):
    client = asgi_client(
        config(dep(up, "old", "gpt-3.5-turbo", capabilities=["vision"]), dep(up, "eyes", "gpt-4o"))
    )
    assert (await chat(client, LOOK)).headers["x-llm-deployment"] == "old"


async def test_the_table_is_silent_on_json_mode_and_on_models_it_does_not_know(asgi_client, up):
    client = asgi_client(config(dep(up, "old", "gpt-3.5-turbo")))
    text = [{"role": "user", "content": "hi"}]
    response = await chat(client, text, response_format={"type": "json_object"})
    assert response.status_code == 200
    unknown = asgi_client(config({**dep(up, "x", "whatever-1"), "provider": "openai-compatible"}))
    assert (await chat(unknown, LOOK)).status_code == 200


async def test_the_tables_context_window_refuses_what_cannot_fit(asgi_client, up):
    client = asgi_client(config(dep(up, "old", "gpt-3.5-turbo")))
    long_prompt = [{"role": "user", "content": "word " * 20_000}]  # ~25k tokens by the estimate
    response = await chat(client, long_prompt, max_tokens=10)
    error = assert_error_shape(response, 400, "request_exceeds_limit")
    assert "context window" in error["message"]
    roomy = asgi_client(config(dep(up, "old", "gpt-3.5-turbo"), dep(up, "big", "gpt-4o")))
    assert (await chat(roomy, long_prompt, max_tokens=10)).headers["x-llm-deployment"] == "big"
    declared = asgi_client(config(dep(up, "old", "gpt-3.5-turbo", context_window=64_000)))
    assert (await chat(declared, long_prompt, max_tokens=10)).status_code == 200
