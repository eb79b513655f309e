"""The Anthropic provider and the /v1/messages endpoint, end to end: the official `openai`
SDK against `provider: anthropic` deployments on a fake Anthropic server, and the official
`anthropic` SDK against /v1/messages routed to a fake OpenAI upstream and to the fake
Anthropic server, all through a real `asgi-llm serve` process."""

from __future__ import annotations

import base64

import anthropic
import httpx2
import openai
import orjson
import pytest

from tests.conftest import assert_error_shape, upstream_model
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.harness import ProxyServer

USER = [{"role": "user", "content": "Say hello"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PDF = b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n%%EOF\n"
PDF_SOURCE = {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(PDF).decode()}
CLAUDE_WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def claude_deployment(ident: str, fake: FakeAnthropic, **extra: object) -> dict[str, object]:
    return {
        "id": ident,
        "provider": "anthropic",
        "model": "claude-fake-1",
        "base_url": fake.base_url,
        "api_key": f"sk-ant-secret-{ident}",
        **extra,
    }


@pytest.fixture(scope="module")
def fakes():
    with FakeAnthropic("claude") as one, FakeAnthropic("claude2") as two, FakeUpstream("gpt") as gpt:
        yield one, two, gpt


@pytest.fixture(scope="module")
def proxy(fakes, tmp_path_factory):
    one, two, gpt = fakes
    config = {
        "models": [
            {"name": "claude", "deployments": [claude_deployment("claude-a", one)]},
            {
                "name": "claude-pair",
                "deployments": [claude_deployment("pair-a", one), claude_deployment("pair-b", two)],
            },
            {
                "name": "claude-versioned",
                "deployments": [claude_deployment("versioned", one, api_version="2024-01-01")],
            },
            upstream_model("gpt", gpt.base_url),
        ],
        "routing": {"retries": 1},
    }
    with ProxyServer(config, tmp_path_factory.mktemp("anthropic")) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fakes):
    for fake in fakes:
        fake.reset()
    fakes[0].default = fakes[1].default = Reply()
    fakes[2].default = Behavior()


@pytest.fixture
def sdk(proxy):
    with openai.OpenAI(base_url=proxy.base_url, api_key="sk-client-key", max_retries=0, timeout=20) as client:
        yield client


@pytest.fixture
def claude_sdk(proxy):
    with anthropic.Anthropic(
        base_url=proxy.root_url, api_key="sk-client-key", max_retries=0, timeout=20
    ) as client:
        yield client


# -- the openai SDK against provider: anthropic ------------------------------------------------
def test_chat_reaches_anthropic_in_its_own_form(sdk, fakes):
    one = fakes[0]
    raw = sdk.chat.completions.with_raw_response.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}, *USER],
        temperature=0.5,
        stop=["###"],
        user="alice",
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the fake Claude."
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 7)
    assert raw.headers["x-llm-deployment"] == "claude-a"
    seen = one.requests[-1]
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == "sk-ant-secret-claude-a"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen.headers and "sk-client-key" not in str(seen.headers)
    assert seen.json == {
        "model": "claude-fake-1",
        "system": "Be brief.",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Say hello"}],
        "temperature": 0.5,
        "stop_sequences": ["###"],
        "metadata": {"user_id": "alice"},
    }


def test_api_version_comes_from_the_deployment(sdk, fakes):
    sdk.chat.completions.create(model="claude-versioned", messages=USER, max_tokens=10)
    seen = fakes[0].requests[-1]
    assert seen.headers["anthropic-version"] == "2024-01-01"
    assert seen.json["max_tokens"] == 10


def test_image_parts_reach_anthropic_as_image_sources(sdk, fakes):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()
    sdk.chat.completions.create(
        model="claude",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ],
    )
    assert fakes[0].requests[-1].json["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_tool_calls_and_tool_results_both_ways(sdk, fakes):
    one = fakes[0]
    one.script(Reply(text="", tool_uses=[("get_weather", {"city": "Paris"})]))
    completion = sdk.chat.completions.create(
        model="claude", messages=USER, tools=[WEATHER], tool_choice="required"
    )
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, orjson.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    assert one.requests[-1].json["tools"] == [
        {**CLAUDE_WEATHER, "input_schema": {**CLAUDE_WEATHER["input_schema"], "required": ["city"]}}
    ]
    assert one.requests[-1].json["tool_choice"] == {"type": "any"}
    sdk.chat.completions.create(
        model="claude",
        tools=[WEATHER],
        messages=[
            *USER,
            completion.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"},
        ],
    )
    turns = one.requests[-1].json["messages"]
    assert turns[1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Paris"}}],
    }
    assert turns[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}],
    }


def test_stream_of_text_with_usage_when_asked(sdk, fakes):
    fakes[0].default = Reply(text="One two three four.", chunks=4, thinking=True)
    stream = sdk.chat.completions.create(
        model="claude", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) == 4 and "".join(texts) == "One two three four."
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 7
    assert fakes[0].requests[-1].json["stream"] is True
    plain = list(sdk.chat.completions.create(model="claude", messages=USER, stream=True))
    assert all(c.usage is None for c in plain) and plain[-1].choices[0].finish_reason == "stop"


def test_stream_of_tool_calls_with_argument_deltas(sdk, fakes):
    fakes[0].default = Reply(
        text="Let me look.",
        tool_uses=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})],
        json_pieces=3,
    )
    chunks = list(sdk.chat.completions.create(model="claude", messages=USER, tools=[WEATHER], stream=True))
    calls: dict[int, dict[str, str]] = {}
    argument_deltas = 0
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += call.id or ""
            slot["name"] += call.function.name or ""
            slot["arguments"] += call.function.arguments or ""
            argument_deltas += bool(call.function.arguments)
    assert argument_deltas == 6
    assert [(c["name"], orjson.loads(c["arguments"])) for _, c in sorted(calls.items())] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert all(c["id"].startswith("toolu_") for c in calls.values())
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_overloaded_fails_over_then_all_overloaded_is_a_502(sdk, fakes):
    one, two, _ = fakes
    one.script(Reply(status=529, error_message="Overloaded"))
    raw = sdk.chat.completions.with_raw_response.create(model="claude-pair", messages=USER)
    assert raw.headers["x-llm-deployment"] == "pair-b" and raw.headers["x-llm-attempts"] == "2"
    one.script(Reply(status=529))
    two.script(Reply(status=529))
    response = httpx2.post(
        sdk.base_url.join("chat/completions").__str__(),
        json={"model": "claude-pair", "messages": USER},
        timeout=20,
    )
    assert assert_error_shape(response, 502)["type"] == "upstream_error"


def test_an_anthropic_400_is_passed_on(sdk, fakes):
    fakes[0].script(Reply(status=400, error_message="messages.0.content: must not be empty"))
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="claude", messages=USER)
    assert caught.value.status_code == 400
    assert caught.value.body["message"] == "messages.0.content: must not be empty"
    assert caught.value.body["type"] == "invalid_request_error"


def test_a_parameter_anthropic_lacks_is_refused_before_the_call(sdk, fakes):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="claude", messages=USER, seed=42)
    assert caught.value.body["code"] == "unsupported_parameter"
    assert caught.value.body["param"] == "seed"
    assert fakes[0].requests == []


@pytest.mark.parametrize(
    "reply", [Reply(error_after=6, chunk_delay_s=0.05), Reply(cut_after=6, chunk_delay_s=0.05)]
)
def test_a_stream_broken_after_the_first_token_ends_with_an_error_event(sdk, fakes, reply):
    fakes[0].default = reply
    got = ""
    with pytest.raises(openai.APIError, match="interrupted|ended early"):
        for chunk in sdk.chat.completions.create(model="claude", messages=USER, stream=True):
            got += chunk.choices[0].delta.content or ""
    assert got.startswith("Hello")


def test_an_error_event_before_the_first_token_fails_over(sdk, fakes):
    one, two, _ = fakes
    one.script(Reply(error_after=2))  # message_start, block start, then overloaded
    stream = sdk.chat.completions.with_raw_response.create(model="claude-pair", messages=USER, stream=True)
    assert stream.headers["x-llm-deployment"] == "pair-b"
    assert (
        "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)
        == "Hello from the fake Claude."
    )


# -- the anthropic SDK against /v1/messages ----------------------------------------------------
def test_messages_routed_to_an_openai_upstream(claude_sdk, fakes):
    gpt = fakes[2]
    message = claude_sdk.messages.create(
        model="gpt",
        max_tokens=50,
        system="Be brief.",
        messages=USER,
        tools=[CLAUDE_WEATHER],
        tool_choice={"type": "auto"},
        stop_sequences=["###"],
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].text == "tok0 tok1 tok2 "
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 3)
    seen = gpt.requests[-1].json
    assert seen["messages"] == [{"role": "system", "content": "Be brief."}, *USER]
    assert seen["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": CLAUDE_WEATHER["input_schema"],
            },
        }
    ]
    assert (seen["tool_choice"], seen["stop"], seen["max_tokens"]) == ("auto", ["###"], 50)


def test_messages_with_tool_calls_from_an_openai_upstream(claude_sdk, fakes):
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-up",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_9",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }
    fakes[2].script(Behavior(body=orjson.dumps(completion)))
    message = claude_sdk.messages.create(model="gpt", max_tokens=50, messages=USER, tools=[CLAUDE_WEATHER])
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert (block.type, block.id, block.name, block.input) == (
        "tool_use",
        "call_9",
        "get_weather",
        {"city": "Rome"},
    )


def test_messages_stream_from_an_openai_upstream(claude_sdk, fakes):
    fakes[2].default = Behavior(chunks=4)
    with claude_sdk.messages.stream(model="gpt", max_tokens=50, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "tok0 tok1 tok2 tok3 "
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (2, 4)
    assert fakes[2].requests[-1].json["stream_options"] == {"include_usage": True}


def test_messages_stream_of_tool_calls_from_an_openai_upstream(claude_sdk, fakes):
    head = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": "gpt-up"}
    deltas = [
        {"role": "assistant", "content": "Checking."},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Rome"}'}}]},
    ]
    events = [{**head, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    events.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    events.append({**head, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 6}})
    body = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    fakes[2].script(Behavior(body=body, content_type="text/event-stream"))
    with claude_sdk.messages.stream(
        model="gpt", max_tokens=50, messages=USER, tools=[CLAUDE_WEATHER]
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"city": "Rome"} and final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 6)


def test_messages_routed_to_anthropic_keep_its_native_answer(claude_sdk, fakes):
    one = fakes[0]
    one.script(Reply(text="Stopped", stop_reason="stop_sequence", stop_sequence="###"))
    message = claude_sdk.messages.create(
        model="claude",
        max_tokens=50,
        messages=USER,
        stop_sequences=["###"],
        metadata={"user_id": "bob"},
        extra_body={"top_k": 5},
    )
    assert message.id.startswith("msg_claude_")
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "###")
    assert message.content[0].text == "Stopped"
    seen = one.requests[-1].json
    assert (seen["top_k"], seen["metadata"], seen["stop_sequences"]) == (5, {"user_id": "bob"}, ["###"])


def test_messages_with_tools_routed_to_anthropic(claude_sdk, fakes):
    one = fakes[0]
    one.script(Reply(text="", tool_uses=[("get_weather", {"city": "Lima"})]))
    message = claude_sdk.messages.create(
        model="claude",
        max_tokens=50,
        messages=USER,
        tools=[CLAUDE_WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert message.stop_reason == "tool_use"
    assert message.content[0].input == {"city": "Lima"}
    assert one.requests[-1].json["tool_choice"] == {"type": "tool", "name": "get_weather"}
    turns = [
        *USER,
        {"role": "assistant", "content": [b.model_dump() for b in message.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": message.content[0].id, "content": "Cloudy"}],
        },
    ]
    follow = claude_sdk.messages.create(model="claude", max_tokens=50, tools=[CLAUDE_WEATHER], messages=turns)
    assert follow.stop_reason == "end_turn"
    assert one.requests[-1].json["messages"] == turns  # as the client sent them


def test_messages_stream_routed_to_anthropic(claude_sdk, fakes):
    fakes[0].default = Reply(
        text="Sure, checking.",
        tool_uses=[("get_weather", {"city": "Kyiv"})],
        input_tokens=31,
        output_tokens=12,
    )
    with claude_sdk.messages.stream(
        model="claude", max_tokens=50, messages=USER, tools=[CLAUDE_WEATHER]
    ) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[0].text == "Sure, checking."
    assert final.content[1].input == {"city": "Kyiv"}
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (31, 12)


def test_messages_create_stream_true_gives_raw_events(claude_sdk, fakes):
    fakes[0].default = Reply(input_tokens=17)
    events = list(claude_sdk.messages.create(model="claude", max_tokens=50, messages=USER, stream=True))
    assert events[0].type == "message_start" and events[0].message.usage.input_tokens == 17
    assert [e.type for e in events[-2:]] == ["message_delta", "message_stop"]
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == "Hello from the fake Claude."


def test_messages_errors_keep_the_contracts_shape_and_map_by_status(claude_sdk, fakes):
    with pytest.raises(anthropic.NotFoundError):
        claude_sdk.messages.create(model="no-such-model", max_tokens=5, messages=USER)
    with pytest.raises(anthropic.BadRequestError) as caught:  # only Anthropic can read a PDF
        claude_sdk.messages.create(
            model="gpt",
            max_tokens=5,
            messages=[{"role": "user", "content": [{"type": "document", "source": PDF_SOURCE}]}],
        )
    assert caught.value.body["error"]["param"] == "messages[0].content[0].type"
    assert caught.value.body["error"]["code"] == "unsupported_parameter"
    assert fakes[2].requests == []
    fakes[0].script(Reply(status=529), Reply(status=529))
    with pytest.raises(anthropic.InternalServerError) as failed:
        claude_sdk.messages.create(model="claude", max_tokens=5, messages=USER)
    assert failed.value.status_code == 502


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (Reply(error_after=6, chunk_delay_s=0.05), "Overloaded"),  # Anthropic's own event, relayed
        (Reply(cut_after=6, chunk_delay_s=0.05), "interrupted|ended early"),  # ours, in its words
    ],
)
def test_a_broken_stream_on_messages_ends_with_an_error_event(claude_sdk, fakes, reply, said):
    fakes[0].default = reply
    seen = []
    with pytest.raises(anthropic.APIStatusError, match=said) as caught:
        with claude_sdk.messages.stream(model="claude", max_tokens=50, messages=USER) as stream:
            seen.extend(event.type for event in stream)
    assert caught.value.status_code == 200  # an error event in a stream that had begun
    assert "message_start" in seen and "message_stop" not in seen
