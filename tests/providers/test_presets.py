"""Named presets for OpenAI-compatible services (`provider: groq`, `mistral`, ...): each one's
default endpoint and auth, its quirks, and the official SDKs through a real `asgi-llm serve`
(the fake OpenAI-compatible upstream standing in for every service by `base_url`)."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import orjson
import pytest

from asgi_llm import Config, ConfigError
from asgi_llm.config.schema import LOCAL_PRESETS, PRESET_BASE_URLS
from asgi_llm.providers.presets import PRESETS
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.harness import ProxyServer

NAMES = sorted(PRESETS)
USER = [{"role": "user", "content": "Say hello"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def preset_deployment(name: str, fake: FakeUpstream) -> dict[str, Any]:
    deployment: dict[str, Any] = {
        "id": f"{name}-d",
        "provider": name,
        "model": f"{name}-model",
        "base_url": fake.base_url,
    }
    if name not in LOCAL_PRESETS:
        deployment["api_key"] = f"sk-{name}-secret-key"
    return deployment


@pytest.fixture(scope="module")
def fake():
    with FakeUpstream("service") as server:
        yield server


@pytest.fixture(scope="module")
def proxy(fake, tmp_path_factory):
    config = {"models": [{"name": name, "deployments": [preset_deployment(name, fake)]} for name in NAMES]}
    with ProxyServer(config, tmp_path_factory.mktemp("presets")) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fake):
    fake.reset()
    fake.default = Behavior()


@pytest.fixture
def sdk(proxy):
    with openai.OpenAI(base_url=proxy.base_url, api_key="sk-client-key", max_retries=0, timeout=20) as client:
        yield client


@pytest.mark.parametrize("name", NAMES)
def test_each_preset_reaches_its_service_with_its_key(sdk, fake, name):
    raw = sdk.chat.completions.with_raw_response.create(model=name, messages=USER)
    assert raw.parse().choices[0].message.content == "tok0 tok1 tok2 "
    assert raw.headers["x-llm-deployment"] == f"{name}-d"
    seen = fake.requests[-1]
    assert seen.path == "/v1/chat/completions" and seen.json["model"] == f"{name}-model"
    if name in LOCAL_PRESETS:
        assert "authorization" not in seen.headers
    else:
        assert seen.headers["authorization"] == f"Bearer sk-{name}-secret-key"


@pytest.mark.parametrize("name", ["groq", "mistral", "ollama"])
def test_streams_tools_over_two_turns_and_embeddings(sdk, fake, name):
    chunks = list(sdk.chat.completions.create(model=name, messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "tok0 tok1 tok2 "
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = sdk.chat.completions.create(model=name, messages=ask, tools=[WEATHER])
    [call] = first.choices[0].message.tool_calls
    follow = sdk.chat.completions.create(
        model=name,
        tools=[WEATHER],
        messages=[
            *ask,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny"},
        ],
    )
    assert follow.choices[0].message.content
    assert fake.requests[-1].json["messages"][-1] == {
        "role": "tool",
        "tool_call_id": call.id,
        "content": "Sunny",
    }
    vectors = sdk.embeddings.create(model=name, input=["a", "b"])
    assert len(vectors.data) == 2 and fake.requests[-1].path == "/v1/embeddings"


def test_the_anthropic_sdk_through_a_preset(proxy, fake):
    with anthropic.Anthropic(
        base_url=proxy.root_url, api_key="sk-client-key", max_retries=0, timeout=20
    ) as claude:
        message = claude.messages.create(model="groq", max_tokens=20, messages=USER)
        assert message.content[0].text == "tok0 tok1 tok2 "
        with claude.messages.stream(model="groq", max_tokens=20, messages=USER) as stream:
            assert "".join(stream.text_stream) == "tok0 tok1 tok2 "
        tool = {"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}
        called = claude.messages.create(
            model="groq",
            max_tokens=20,
            tools=[tool],
            messages=[{"role": "user", "content": "What is the weather in Rome?"}],
        )
        assert called.stop_reason == "tool_use" and called.content[-1].name == "get_weather"


def test_mistral_gets_its_own_field_names_and_no_stream_options(sdk, fake):
    list(
        sdk.chat.completions.create(
            model="mistral",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
            max_completion_tokens=30,
            seed=5,
            user="alice",
            store=False,
        )
    )
    sent = fake.requests[-1].json
    assert "stream_options" not in sent and "user" not in sent and "store" not in sent
    assert (sent["max_tokens"], sent["random_seed"]) == (30, 5)
    assert "max_completion_tokens" not in sent and "seed" not in sent
    list(sdk.chat.completions.create(model="mistral", messages=USER, stream=True))
    assert "stream_options" not in fake.requests[-1].json  # not even the one the proxy adds


def test_groq_loses_message_names_and_neutral_fields_only(sdk, fake):
    sdk.chat.completions.create(
        model="groq", messages=[{"role": "user", "content": "Hi", "name": "alice"}], logprobs=False, n=1
    )
    sent = fake.requests[-1].json
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]
    assert "logprobs" not in sent and "n" not in sent
    sdk.chat.completions.create(model="groq", messages=USER, logprobs=True)
    assert fake.requests[-1].json["logprobs"] is True  # it changes the answer: Groq's own 400 decides


def test_cerebras_loses_neutral_penalties(sdk, fake):
    sdk.chat.completions.create(model="cerebras", messages=USER, frequency_penalty=0, presence_penalty=0.5)
    sent = fake.requests[-1].json
    assert "frequency_penalty" not in sent and sent["presence_penalty"] == 0.5


def test_xai_loses_neutral_penalties_its_reasoning_models_refuse(sdk, fake):
    sdk.chat.completions.create(model="xai", messages=USER, frequency_penalty=0, presence_penalty=0.5)
    sent = fake.requests[-1].json
    assert "frequency_penalty" not in sent and sent["presence_penalty"] == 0.5


def test_lm_studio_gets_json_mode_as_a_schema(sdk, fake):
    """LM Studio refuses `response_format: json_object` ("must be 'json_schema' or 'text'"):
    JSON mode goes as a schema of any object; `text` (neutral) is dropped."""
    sdk.chat.completions.create(model="lmstudio", messages=USER, response_format={"type": "json_object"})
    assert fake.requests[-1].json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "json_object", "schema": {"type": "object"}},
    }
    sdk.chat.completions.create(model="lmstudio", messages=USER, response_format={"type": "text"})
    assert "response_format" not in fake.requests[-1].json
    schema = {"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object"}}}
    sdk.chat.completions.create(model="lmstudio", messages=USER, response_format=schema)
    assert fake.requests[-1].json["response_format"] == schema  # already its way


def test_openrouter_processing_comments_are_skipped(sdk, fake):
    chunk = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": []}
    delta = {**chunk, "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
    body = (
        b": OPENROUTER PROCESSING\n\n"
        + b"data: "
        + orjson.dumps(delta)
        + b"\n\n"
        + b": OPENROUTER PROCESSING\n\n"
        + b"data: [DONE]\n\n"
    )
    fake.default = Behavior(body=body, content_type="text/event-stream")
    chunks = list(sdk.chat.completions.create(model="openrouter", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hi"


async def test_a_dropped_field_is_a_debug_line(asgi_client, fake, no_secrets_in_logs):
    config = {"models": [{"name": "mistral", "deployments": [preset_deployment("mistral", fake)]}]}
    client = asgi_client(config)
    response = await client.post(
        "/v1/chat/completions", json={"model": "mistral", "messages": USER, "user": "bob"}
    )
    assert response.status_code == 200, response.text
    assert "asgi_llm.providers: mistral-d: mistral refuses user; dropped" in no_secrets_in_logs.lines


# -- config --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_each_preset_has_a_default_endpoint_unless_it_would_be_ours(name):
    deployment: dict[str, Any] = {"id": "d", "provider": name, "model": "m", "api_key": "k"}
    if name == "vllm":
        with pytest.raises(ConfigError, match=r"deployments\[0\]\.base_url: is required for provider 'vllm'"):
            Config.from_dict({"models": [{"name": "m", "deployments": [deployment]}]})
        return
    config = Config.from_dict({"models": [{"name": "m", "deployments": [deployment]}]})
    assert config.models[0].deployments[0].url == PRESET_BASE_URLS[name]


@pytest.mark.parametrize("name", sorted(set(NAMES) - LOCAL_PRESETS))
def test_a_hosted_service_needs_a_key(name):
    with pytest.raises(ConfigError, match=rf"deployments\[0\]\.api_key: is required for provider '{name}'"):
        Config.from_dict(
            {"models": [{"name": "m", "deployments": [{"id": "d", "provider": name, "model": "m"}]}]}
        )


def test_local_servers_need_no_key():
    config = Config.from_dict(
        {"models": [{"name": "m", "deployments": [{"id": "d", "provider": "ollama", "model": "llama3"}]}]}
    )
    assert config.models[0].deployments[0].url == "http://127.0.0.1:11434/v1"


def test_the_adjustment_is_a_pure_function_of_the_body():
    from asgi_llm.config.schema import Deployment
    from asgi_llm.providers.presets import PresetProvider

    deployment = Deployment(id="d", provider="mistral", model="m", api_key="k")
    body = {"model": "m", "messages": USER, "max_tokens": 5, "max_completion_tokens": 9, "metadata": {"a": 1}}
    assert PresetProvider("mistral").adjust(dict(body), deployment) == {
        "model": "m",
        "messages": USER,
        "max_tokens": 9,
    }
    assert orjson.dumps(body)  # untouched input


class _Contexts:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[Any] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.seen.append(scope["state"]["llm"])


@pytest.mark.parametrize("stream", [False, True])
async def test_deepseeks_cache_hits_are_the_usage_records_cached_tokens(asgi_client, fake, stream):
    from asgi_llm import build_app

    usage = {
        "prompt_tokens": 90,
        "completion_tokens": 10,
        "total_tokens": 100,
        "prompt_cache_hit_tokens": 64,
        "prompt_cache_miss_tokens": 26,
        "completion_tokens_details": {"reasoning_tokens": 4},
    }
    head = {"id": "c1", "object": "chat.completion", "created": 1, "model": "deepseek-chat"}
    if stream:
        events = [
            {
                **head,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": "hi"}}],
            },
            {**head, "object": "chat.completion.chunk", "choices": [], "usage": usage},
        ]
        body = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"
        fake.script(Behavior(body=body, content_type="text/event-stream"))
    else:
        message = {"role": "assistant", "content": "hi"}
        answer = {
            **head,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage,
        }
        fake.script(Behavior(body=orjson.dumps(answer)))
    config = Config.from_dict(
        {"models": [{"name": "ds", "deployments": [preset_deployment("deepseek", fake)]}]}
    )
    app = _Contexts(build_app(config))
    client = asgi_client(app=app)
    response = await client.post(
        "/v1/chat/completions", json={"model": "ds", "messages": USER, "stream": stream}
    )
    assert response.status_code == 200, response.text
    recorded = app.seen[-1].usage
    assert (recorded.prompt_tokens, recorded.cached_prompt_tokens, recorded.completion_tokens) == (90, 64, 10)
    assert recorded.reasoning_tokens == 4
