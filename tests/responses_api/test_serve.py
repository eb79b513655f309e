"""The Responses API through a real `asgi-llm serve`, spoken by the official `openai` SDK:
natively to an OpenAI fake (it records the Responses request it got), translated to a
chat-completions-only upstream and to the fake Anthropic server; state, tenants, RBAC and
faults."""

from __future__ import annotations

import json

import openai
import pytest

from asgi_llm.auth.keys import hash_key
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.harness import ProxyServer

KEYS = {"alice": "sk-alice-responses-1", "bob": "sk-bob-responses-1", "chatonly": "sk-chat-only-1"}
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def deployment(ident: str, provider: str, base_url: str, model: str) -> dict[str, object]:
    return {
        "id": ident,
        "provider": provider,
        "model": model,
        "base_url": base_url,
        "api_key": f"sk-up-{ident}",
    }


@pytest.fixture(scope="module")
def fakes():
    with FakeUpstream("native") as native, FakeUpstream("chat") as chat, FakeAnthropic("claude") as claude:
        yield native, chat, claude


@pytest.fixture(scope="module")
def proxy(fakes, tmp_path_factory):
    native, chat, claude = fakes
    config = {
        "models": [
            {
                "name": "gpt-native",
                "deployments": [deployment("native", "openai", native.base_url, "gpt-4o-mini")],
            },
            {
                "name": "gpt-chat",
                "deployments": [deployment("chat", "openai-compatible", chat.base_url, "m")],
            },
            {
                "name": "claude",
                "deployments": [deployment("claude", "anthropic", claude.base_url, "claude-fake-1")],
            },
            {
                "name": "gpt-failover",
                "deployments": [
                    deployment("first", "openai", native.base_url, "gpt-4o-mini"),
                    deployment("second", "openai-compatible", chat.base_url, "m"),
                ],
            },
        ],
        "routing": {"retries": 1},
        "auth": {
            "api_keys": [
                {"id": "alice", "key_sha256": hash_key(KEYS["alice"]), "roles": ["user"], "tenant": "a"},
                {"id": "bob", "key_sha256": hash_key(KEYS["bob"]), "roles": ["user"], "tenant": "b"},
                {
                    "id": "chatonly",
                    "key_sha256": hash_key(KEYS["chatonly"]),
                    "roles": ["chatter"],
                    "tenant": "a",
                },
            ],
            "roles": {
                "user": {"models": ["*"], "endpoints": ["chat", "responses", "models"]},
                "chatter": {"models": ["*"], "endpoints": ["chat"]},
            },
        },
    }
    with ProxyServer(config, tmp_path_factory.mktemp("responses")) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fakes):
    for fake in fakes:
        fake.reset()
    fakes[0].default = fakes[1].default = Behavior()


def client(proxy: ProxyServer, who: str = "alice") -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key=KEYS[who], max_retries=0)


@pytest.mark.parametrize("model", ["gpt-native", "gpt-chat", "claude"])
def test_create_retrieve_list_delete(proxy, fakes, model):
    sdk = client(proxy)
    response = sdk.responses.create(model=model, input="Say hello", instructions="Be brief.")
    assert response.status == "completed" and response.output_text
    assert response.usage is not None and response.usage.output_tokens > 0
    native, chat, claude = fakes
    if model == "gpt-native":
        (seen,) = [r for r in native.requests if r.path.endswith("/responses")]
        assert seen.json["model"] == "gpt-4o-mini" and seen.json["instructions"] == "Be brief."
    elif model == "gpt-chat":
        (seen,) = chat.requests
        assert seen.path.endswith("/chat/completions")
        assert seen.json["messages"][0] == {"role": "system", "content": "Be brief."}
    else:
        assert len(claude.requests) == 1
    again = sdk.responses.retrieve(response.id)
    assert again.id == response.id and again.output_text == response.output_text
    items = sdk.responses.input_items.list(response.id)
    assert [item.type for item in items.data] == ["message"]
    assert sdk.responses.delete(response.id) is None
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(response.id)


@pytest.mark.parametrize("model", ["gpt-native", "gpt-chat", "claude"])
def test_stream_accumulates_to_the_final_response(proxy, model):
    sdk = client(proxy)
    with sdk.responses.stream(model=model, input="Say hello") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas and "".join(deltas) == final.output_text
    assert sdk.responses.retrieve(final.id).output_text == final.output_text


@pytest.mark.parametrize("model", ["gpt-native", "gpt-chat"])
def test_function_calling_over_two_turns_with_previous_response_id(proxy, fakes, model):
    sdk = client(proxy)
    first = sdk.responses.create(model=model, input="What is the weather in Paris?", tools=[WEATHER_TOOL])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments)
    second = sdk.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 21}'}],
        tools=[WEATHER_TOOL],
    )
    assert second.output_text
    native, chat, _ = fakes
    if model == "gpt-chat":  # translated: the whole conversation went upstream
        messages = chat.requests[-1].json["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
        assert messages[1]["tool_calls"][0]["id"] == call.call_id
    else:  # native, same deployment: the upstream continues its own conversation
        assert native.requests[-1].json["previous_response_id"] == first.id


def test_json_schema_text_format(proxy):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    response = client(proxy).responses.create(
        model="gpt-chat",
        input="Answer in JSON",
        text={"format": {"type": "json_schema", "name": "reply", "schema": schema, "strict": True}},
    )
    assert isinstance(json.loads(response.output_text), dict)


def test_another_tenant_cannot_see_or_continue_a_response(proxy):
    mine = client(proxy, "alice").responses.create(model="gpt-chat", input="Say hello")
    other = client(proxy, "bob")
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="gpt-chat", input="and?", previous_response_id=mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(mine.id)
    assert client(proxy, "alice").responses.retrieve(mine.id).id == mine.id


def test_the_responses_grant_is_needed(proxy):
    with pytest.raises(openai.PermissionDeniedError) as info:
        client(proxy, "chatonly").responses.create(model="gpt-chat", input="Say hello")
    assert info.value.code == "endpoint_not_allowed"


def test_store_false_is_not_kept(proxy):
    sdk = client(proxy)
    response = sdk.responses.create(model="gpt-chat", input="Say hello", store=False)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(response.id)


def test_a_native_failure_fails_over_to_a_translated_deployment(proxy, fakes):
    native, chat, _ = fakes
    native.default = Behavior(status=500)
    sdk = client(proxy)
    response = sdk.responses.create(model="gpt-failover", input="Say hello")
    assert response.output_text and chat.requests and chat.requests[-1].path.endswith("/chat/completions")
    # The conversation goes on on whichever deployment answers: the stored items are neutral.
    native.default = Behavior()
    follow = sdk.responses.create(model="gpt-failover", input="Again", previous_response_id=response.id)
    sent = native.requests[-1].json
    assert "previous_response_id" not in sent  # the native upstream never saw that id
    assert sent["input"][-1]["content"] == "Again" and len(sent["input"]) >= 3
    assert follow.output_text


def test_a_cut_stream_ends_with_an_error_event(proxy, fakes):
    _, chat, _ = fakes
    chat.default = Behavior(chunks=10, cut_after=3)
    with client(proxy).responses.stream(model="gpt-chat", input="Say hello") as stream:
        kinds = [event.type for event in stream]
    assert kinds[0] == "response.created" and kinds[-2:] == ["error", "response.failed"]


def test_a_cached_translated_answer_is_a_new_stored_response(tmp_path, fakes):
    native, chat, _ = fakes
    config = {
        "models": [
            {
                "name": "gpt-chat",
                "deployments": [deployment("chat", "openai-compatible", chat.base_url, "m")],
            },
            {
                "name": "gpt-native",
                "deployments": [deployment("native", "openai", native.base_url, "gpt-4o-mini")],
            },
        ],
        "cache": {"backend": "memory://", "namespace_by": "global"},
    }
    with ProxyServer(config, tmp_path) as server:
        sdk = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        first = sdk.responses.with_raw_response.create(model="gpt-chat", input="Say hello", temperature=0)
        second = sdk.responses.with_raw_response.create(model="gpt-chat", input="Say hello", temperature=0)
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
        a, b = first.parse(), second.parse()
        assert a.output_text == b.output_text and a.id != b.id
        assert sdk.responses.retrieve(b.id).output_text == b.output_text
        assert len(chat.requests) == 1
        # A native answer is relayed, never cached: both go upstream.
        for _ in range(2):
            answer = sdk.responses.with_raw_response.create(
                model="gpt-native", input="Say hello", temperature=0
            )
            assert answer.headers["x-cache"] == "miss"
        assert len([r for r in native.requests if r.path.endswith("/responses")]) == 2


@pytest.mark.parametrize("model", ["gpt-native", "gpt-chat"])
def test_a_client_that_leaves_cancels_the_upstream_call(proxy, fakes, model):
    native, chat, _ = fakes
    upstream = native if model == "gpt-native" else chat
    upstream.default = Behavior(chunks=50, chunk_delay_s=0.1)
    with client(proxy).responses.stream(model=model, input="Say hello") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                break  # the client leaves mid-stream
    gone = upstream.wait_for_disconnect(timeout=5)
    assert gone is not None and gone.path.endswith("/responses" if model == "gpt-native" else "/completions")


def test_a_native_stream_cut_midway_ends_with_an_error_event(proxy, fakes):
    native, _, _ = fakes
    native.default = Behavior(chunks=10, cut_after=3)
    with client(proxy).responses.stream(model="gpt-native", input="Say hello") as stream:
        kinds = [event.type for event in stream]
    assert kinds[0] == "response.created" and kinds[-1] == "error"
