"""Anthropic's models on Vertex AI (`provider: vertex` with a `claude-*` model,
asgi_llm/providers/vertex.py) behind a real `asgi-llm serve`: rawPredict and
streamRawPredict with `anthropic_version: vertex-2023-10-16` and no model in the body, a
token from the service account's grant; chat, streams and tools from the openai SDK, native
`/v1/messages` from the anthropic SDK (thinking signatures and betas pass), failover from
Claude to Gemini on the same Vertex project, and the usage record equal to the fake's."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from asgi_llm import Config
from tests.fakes.anthropic import Reply as ClaudeReply
from tests.fakes.gemini import Reply as GeminiReply
from tests.fakes.vertex_claude import FakeVertexClaude
from tests.harness import ProxyServer

USER = [{"role": "user", "content": "Say hello"}]
THINKING = {"type": "enabled", "budget_tokens": 2048}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PATH = "/v1/projects/test-project/locations/us-central1/publishers/anthropic/models/{}:{}"


@pytest.fixture(scope="module")
def fake():
    with FakeVertexClaude() as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake):
    fake.reset()
    fake.claude.default = ClaudeReply()
    fake.default = GeminiReply()


def deployment(ident: str, fake: FakeVertexClaude, credentials: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "provider": "vertex",
        "model": fake.claude_model,
        "project": fake.project,
        "location": fake.location,
        "credentials": credentials,
        "base_url": fake.root_url,
        **extra,
    }


@pytest.fixture(scope="module")
def proxy(fake, tmp_path_factory):
    key = str(fake.service_account_file(tmp_path_factory.mktemp("vertex-claude-key")))
    config = {
        "models": [
            {"name": "claude", "deployments": [deployment("vertex-claude", fake, key)]},
            {
                "name": "claude-or-gemini",
                "deployments": [
                    deployment("claude-first", fake, key),
                    deployment("gemini-then", fake, key, model="gemini-fake-1"),
                ],
            },
            {
                "name": "gemini-only",
                "deployments": [deployment("gemini-alone", fake, key, model="gemini-fake-1")],
            },
        ],
        "routing": {"retries": 1},
    }
    with ProxyServer(config, tmp_path_factory.mktemp("vertex-claude")) as server:
        yield server


@pytest.fixture
def sdk(proxy):
    with openai.OpenAI(base_url=proxy.base_url, api_key="sk-client", max_retries=0, timeout=20) as client:
        yield client


@pytest.fixture
def claude_sdk(proxy):
    with anthropic.Anthropic(
        base_url=proxy.root_url, api_key="sk-client", max_retries=0, timeout=20
    ) as client:
        yield client


def test_chat_goes_to_raw_predict_in_vertexs_form(sdk, fake):
    completion = sdk.chat.completions.create(
        model="claude", messages=[{"role": "system", "content": "Be brief."}, *USER], max_tokens=100
    )
    assert completion.choices[0].message.content == "Hello from the fake Claude."
    seen = fake.requests[-1]
    assert seen.path == PATH.format(fake.claude_model, "rawPredict")
    assert seen.headers["authorization"].startswith("Bearer ya29.fake-")
    assert seen.json == {
        "anthropic_version": "vertex-2023-10-16",
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hello"}],
    }
    assert "x-api-key" not in seen.headers and not fake.refused
    [usage] = fake.claude.usages
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        usage["input_tokens"],
        usage["output_tokens"],
    )


def test_a_stream_goes_to_stream_raw_predict_with_its_usage(sdk, fake):
    chunks = list(
        sdk.chat.completions.create(
            model="claude", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake Claude."
    seen = fake.requests[-1]
    assert seen.path == PATH.format(fake.claude_model, "streamRawPredict")
    assert seen.json["stream"] is True and "model" not in seen.json
    [usage] = fake.claude.usages
    assert chunks[-1].usage.prompt_tokens == usage["input_tokens"]
    assert chunks[-1].usage.completion_tokens == usage["output_tokens"]


def test_tools_over_two_turns(sdk, fake):
    fake.claude.script(ClaudeReply(text="", tool_uses=[("get_weather", {"city": "Oslo"})]))
    first = sdk.chat.completions.create(model="claude", messages=USER, tools=[WEATHER])
    [call] = first.choices[0].message.tool_calls
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city":"Oslo"}')
    assert first.choices[0].finish_reason == "tool_calls"
    assert fake.requests[-1].json["tools"][0]["name"] == "get_weather"
    follow = sdk.chat.completions.create(
        model="claude",
        tools=[WEATHER],
        messages=[
            *USER,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "Cold"},
        ],
    )
    assert follow.choices[0].message.content == "Hello from the fake Claude."
    result = fake.requests[-1].json["messages"][-1]["content"][0]
    assert result == {"type": "tool_result", "tool_use_id": call.id, "content": "Cold"}


def test_native_messages_pass_through_with_thinking_and_betas(claude_sdk, fake):
    tools = [{"name": "get_time", "description": "Now.", "input_schema": {"type": "object"}}]
    fake.claude.script(ClaudeReply(text="", tool_uses=[("get_time", {"zone": "UTC"})]))
    first = claude_sdk.beta.messages.create(
        model="claude",
        max_tokens=4096,
        thinking=THINKING,
        tools=tools,
        messages=USER,
        betas=["interleaved-thinking-2025-05-14"],
    )
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    assert first.content[0].signature == fake.claude.sign(first.content[0].thinking)
    seen = fake.requests[-1]
    assert seen.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert seen.json == {
        "max_tokens": 4096,
        "thinking": THINKING,
        "tools": tools,
        "messages": USER,
        "anthropic_version": "vertex-2023-10-16",
    }
    # The signed thinking goes back unchanged: the fake accepts only its own signatures.
    turns = [
        *USER,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": first.content[1].id, "content": "12:00"}],
        },
    ]
    second = claude_sdk.messages.create(
        model="claude", max_tokens=4096, thinking=THINKING, tools=tools, messages=turns
    )
    assert second.content[0].type == "thinking" and second.stop_reason == "end_turn"
    assert fake.requests[-1].json["messages"][1]["content"][0]["signature"] == first.content[0].signature
    with claude_sdk.messages.stream(model="claude", max_tokens=50, messages=USER) as stream:
        assert "".join(stream.text_stream) == "Hello from the fake Claude."
    assert fake.requests[-1].path == PATH.format(fake.claude_model, "streamRawPredict")
    assert not fake.refused


def test_count_tokens_is_vertexs_own_for_claude_and_an_estimate_for_gemini(claude_sdk, fake, proxy):
    import httpx2

    counted = claude_sdk.messages.count_tokens(model="claude", messages=USER, system="Be brief.")
    assert counted.input_tokens == 4  # the fake's words: "Be brief." and "Say hello"
    seen = fake.requests[-1]
    assert seen.path == PATH.format("count-tokens", "rawPredict")
    assert seen.json["model"] == fake.claude_model
    assert seen.json["anthropic_version"] == "vertex-2023-10-16"
    gemini = httpx2.post(
        proxy.root_url + "/v1/messages/count_tokens",
        json={"model": "gemini-only", "messages": USER},
        headers={"x-api-key": "sk-client"},
        timeout=10,
    )
    assert gemini.status_code == 200 and gemini.headers["x-llm-token-estimate"] == "true"


def test_an_overloaded_claude_fails_over_to_gemini_on_the_same_project(sdk, fake):
    fake.claude.script(ClaudeReply(status=529))
    for stream in (False, True):
        if stream:
            fake.claude.script(ClaudeReply(status=529))
        answer = sdk.chat.completions.with_raw_response.create(
            model="claude-or-gemini", messages=USER, stream=stream
        )
        assert answer.headers["x-llm-deployment"] == "gemini-then"
        assert answer.headers["x-llm-attempts"] == "2"
        if not stream:
            assert answer.parse().choices[0].message.content == "Hello from the fake Gemini."
    assert [r.path.rsplit(":", 1)[1] for r in fake.requests if r.path != "/token"] == [
        "rawPredict",
        "generateContent",
        "streamRawPredict",
        "streamGenerateContent",
    ]


@pytest.mark.parametrize(
    "location,host",
    [
        ("us-east5", "https://us-east5-aiplatform.googleapis.com"),
        ("global", "https://aiplatform.googleapis.com"),
        ("us", "https://aiplatform.us.rep.googleapis.com"),
        ("eu", "https://aiplatform.eu.rep.googleapis.com"),
    ],
)
def test_the_default_endpoint_for_claude(location, host):
    from asgi_llm.context import LLMContext
    from asgi_llm.providers.registry import provider_for

    config = Config.from_dict(
        {
            "models": [
                {
                    "name": "c",
                    "deployments": [
                        {
                            "id": "c",
                            "provider": "vertex",
                            "model": "claude-sonnet-4-5@20250929",
                            "project": "p-1",
                            "location": location,
                            "api_key": "ya29.token",
                        }
                    ],
                }
            ]
        }
    )
    ctx = LLMContext(request_id="r", config=config, endpoint="chat", payload={"model": "c", "messages": USER})
    request = provider_for("vertex").build(ctx, config.models[0].deployments[0])
    assert request.url == (
        f"{host}/v1/projects/p-1/locations/{location}/publishers/anthropic/models/"
        "claude-sonnet-4-5@20250929:rawPredict"
    )
    assert request.headers["authorization"] == "Bearer ya29.token"
