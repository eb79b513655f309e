"""The `gemini` provider end to end: the official `openai` SDK (chat, streams, tools over two
turns, JSON schemas, embeddings), the `anthropic` SDK on /v1/messages and the openai SDK on
/v1/responses, all through a real `asgi-llm serve` to a fake Gemini API that checks what it
gets (tests/fakes/gemini.py); failover from Gemini to another provider; the usage record."""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

import anthropic
import httpx2
import openai
import orjson
import pytest

from asgi_llm import Config, build_app
from tests.conftest import assert_error_shape, upstream_model
from tests.fakes.gemini import FakeGemini, Reply
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.harness import ProxyServer

USER = [{"role": "user", "content": "Say hello"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
GEMINI_WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
}
CLAUDE_WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()


def gemini_deployment(ident: str, fake: FakeGemini, model: str = "gemini-fake-1") -> dict[str, Any]:
    return {
        "id": ident,
        "provider": "gemini",
        "model": model,
        "base_url": fake.root_url,
        "api_key": fake.api_key,
    }


@pytest.fixture(scope="module")
def fakes():
    with FakeGemini("gem") as one, FakeGemini("gem2") as two, FakeUpstream("gpt") as gpt:
        yield one, two, gpt


def proxy_config(one: FakeGemini, two: FakeGemini, gpt: FakeUpstream) -> dict[str, Any]:
    mixed = upstream_model("mixed", gpt.base_url)
    mixed["deployments"].insert(0, gemini_deployment("mixed-gemini", one))
    return {
        "models": [
            {"name": "gemini", "deployments": [gemini_deployment("gemini-a", one)]},
            {
                "name": "gemini-pair",
                "deployments": [gemini_deployment("pair-a", one), gemini_deployment("pair-b", two)],
            },
            {"name": "embed", "deployments": [gemini_deployment("embed-a", one, "gemini-embedding-fake")]},
            {
                "name": "gemini-search",
                "deployments": [
                    {**gemini_deployment("search-a", one), "builtin_tools": ["google_search", "url_context"]}
                ],
            },
            mixed,
        ],
        "routing": {"retries": 1},
    }


@pytest.fixture(scope="module")
def proxy(fakes, tmp_path_factory):
    with ProxyServer(proxy_config(*fakes), tmp_path_factory.mktemp("gemini")) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fakes):
    for fake in fakes:
        fake.reset()
    fakes[0].default = fakes[1].default = Reply()
    fakes[2].default = Behavior()
    yield
    for fake in fakes[:2]:
        assert not [why for _, why in fake.refused if "API key" in why], "a request without the key"


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


# -- the openai SDK: chat ----------------------------------------------------------------------
def test_chat_reaches_gemini_in_its_own_form(sdk, fakes):
    one = fakes[0]
    raw = sdk.chat.completions.with_raw_response.create(
        model="gemini",
        messages=[{"role": "system", "content": "Be brief."}, *USER],
        temperature=0.5,
        top_p=0.9,
        stop=["###"],
        max_tokens=64,
        seed=7,
        user="alice",
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the fake Gemini."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.id == "chatcmpl-gem-1" and completion.model == "gemini-fake-1"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 7)
    assert raw.headers["x-llm-deployment"] == "gemini-a"
    seen = one.requests[-1]
    assert (seen.path, seen.query) == ("/v1beta/models/gemini-fake-1:generateContent", "")
    assert seen.headers["x-goog-api-key"] == one.api_key
    assert "authorization" not in seen.headers and "sk-client-key" not in str(seen.headers)
    assert seen.json == {
        "contents": [{"role": "user", "parts": [{"text": "Say hello"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "maxOutputTokens": 64,
            "temperature": 0.5,
            "topP": 0.9,
            "seed": 7,
            "stopSequences": ["###"],
        },
    }


def test_multi_turn_with_images_inline(sdk, fakes):
    sdk.chat.completions.create(
        model="gemini",
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"},
                    },
                ],
            },
        ],
    )
    assert fakes[0].requests[-1].json["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello!"}]},
        {
            "role": "user",
            "parts": [{"text": "What is this?"}, {"inlineData": {"mimeType": "image/png", "data": PNG}}],
        },
    ]


def test_an_image_url_is_refused_naming_the_field(sdk, fakes):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model="gemini",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}],
                }
            ],
        )
    assert caught.value.body["param"] == "messages[0].content[0].image_url.url"
    assert caught.value.body["code"] == "unsupported_image_url"
    assert fakes[0].requests == []


def test_parallel_tool_calls_over_two_turns(sdk, fakes):
    one = fakes[0]
    one.script(Reply(text="", calls=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})]))
    completion = sdk.chat.completions.create(
        model="gemini", messages=USER, tools=[WEATHER], tool_choice="required"
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    calls = completion.choices[0].message.tool_calls
    assert [(c.function.name, orjson.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") for c in calls)
    first = one.requests[-1].json
    assert first["tools"] == [{"functionDeclarations": [GEMINI_WEATHER]}]
    assert first["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    sdk.chat.completions.create(
        model="gemini",
        tools=[WEATHER],
        messages=[
            *USER,
            completion.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": calls[0].id, "content": "Sunny, 21 C"},
            {"role": "tool", "tool_call_id": calls[1].id, "content": "Rain, 9 C"},
        ],
    )
    assert one.requests[-1].json["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "Sunny, 21 C"}}},
                {"functionResponse": {"name": "get_weather", "response": {"output": "Rain, 9 C"}}},
            ],
        },
    ]


def test_a_thought_signature_comes_back_with_its_call(sdk, fakes):
    one = fakes[0]
    signature = base64.b64encode(bytes(range(200, 256)) * 3).decode()  # holds + and /
    one.script(Reply(text="", calls=[("get_weather", {"city": "Rome"})], signature=signature))
    completion = sdk.chat.completions.create(model="gemini", messages=USER, tools=[WEATHER])
    call = completion.choices[0].message.tool_calls[0]
    assert set(call.id) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
    sdk.chat.completions.create(
        model="gemini",
        tools=[WEATHER],
        messages=[
            *USER,
            completion.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "Warm"},
        ],
    )
    assert one.requests[-1].json["contents"][1]["parts"][0]["thoughtSignature"] == signature
    assert one.refused == []  # the fake refuses a signed call that comes back unsigned


def test_a_tool_result_for_no_call_is_refused(sdk, fakes):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model="gemini", messages=[*USER, {"role": "tool", "tool_call_id": "call_x", "content": "?"}]
        )
    assert caught.value.body["param"] == "messages[1].tool_call_id"


def test_a_json_schema_becomes_gemini_response_schema(sdk, fakes):
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Who"},
            "age": {"type": ["integer", "null"]},
            "pets": {"type": "array", "items": {"$ref": "#/$defs/Pet"}},
        },
        "required": ["name", "age", "pets"],
        "additionalProperties": False,
        "$defs": {
            "Pet": {
                "type": "object",
                "properties": {
                    "kind": {"enum": ["cat", "dog"]},
                    "born": {"type": "string", "format": "date"},
                },
                "required": ["kind"],
                "additionalProperties": False,
            }
        },
    }
    completion = sdk.chat.completions.create(
        model="gemini",
        messages=USER,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema, "strict": True},
        },
    )
    assert orjson.loads(completion.choices[0].message.content) == {
        "name": "fake",
        "age": 2,
        "pets": [{"kind": "cat", "born": "fake"}],
    }
    assert fakes[0].requests[-1].json["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {
                "name": {"type": "STRING", "description": "Who"},
                "age": {"type": "INTEGER", "nullable": True},
                "pets": {
                    "type": "ARRAY",
                    "items": {
                        "type": "OBJECT",
                        "properties": {
                            "kind": {"type": "STRING", "format": "enum", "enum": ["cat", "dog"]},
                            "born": {"type": "STRING"},
                        },
                        "required": ["kind"],
                        "propertyOrdering": ["kind", "born"],
                    },
                },
            },
            "required": ["name", "age", "pets"],
            "propertyOrdering": ["name", "age", "pets"],
        },
    }


def test_json_object_mode(sdk, fakes):
    completion = sdk.chat.completions.create(
        model="gemini", messages=USER, response_format={"type": "json_object"}
    )
    assert orjson.loads(completion.choices[0].message.content) == {"answer": "fake"}
    assert fakes[0].requests[-1].json["generationConfig"] == {"responseMimeType": "application/json"}


def test_a_schema_gemini_cannot_carry_is_refused_naming_where(sdk, fakes):
    schema = {"type": "object", "properties": {"tags": {"type": "object", "patternProperties": {"^x": {}}}}}
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model="gemini",
            messages=USER,
            response_format={"type": "json_schema", "json_schema": {"name": "t", "schema": schema}},
        )
    assert (
        caught.value.body["param"] == "response_format.json_schema.schema.properties.tags.patternProperties"
    )
    assert caught.value.body["code"] == "unsupported_schema"
    assert fakes[0].requests == []


@pytest.mark.parametrize("field, value", [("logit_bias", {"50256": -100}), ("parallel_tool_calls", False)])
def test_a_field_gemini_lacks_is_refused_before_the_call(sdk, fakes, field, value):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="gemini", messages=USER, tools=[WEATHER], extra_body={field: value})
    assert (caught.value.body["param"], caught.value.body["code"]) == (field, "unsupported_parameter")
    assert fakes[0].requests == []


def test_logprobs_come_back_in_openai_shape_streamed_or_not(sdk, fakes):
    fakes[0].default = Reply(text="Hello there, café")
    answer = sdk.chat.completions.create(model="gemini", messages=USER, logprobs=True, top_logprobs=2)
    assert fakes[0].requests[-1].json["generationConfig"] == {"responseLogprobs": True, "logprobs": 2}
    content = answer.choices[0].logprobs.content
    assert "".join(t.token for t in content) == "Hello there, café"
    assert content[2].token == " café" and content[2].bytes == list(" café".encode())
    assert [t.token for t in content[0].top_logprobs] == ["Hello", "Hello~1"]
    assert all(t.logprob < 0 for t in content)
    stream = sdk.chat.completions.create(model="gemini", messages=USER, logprobs=True, stream=True)
    pieces = [c.choices[0] for c in stream if c.choices and c.choices[0].delta.content]
    assert fakes[0].requests[-1].json["generationConfig"] == {"responseLogprobs": True}
    for piece in pieces:  # each delta with its own tokens, no alternatives asked
        assert "".join(t.token for t in piece.logprobs.content) == piece.delta.content
        assert all(t.top_logprobs == [] for t in piece.logprobs.content)
    assert "".join(p.delta.content for p in pieces) == "Hello there, café"


def test_builtin_tools_of_the_deployment_go_with_every_call(sdk, fakes):
    answer = sdk.chat.completions.create(model="gemini-search", messages=USER)
    assert fakes[0].requests[-1].json["tools"] == [{"googleSearch": {}}, {"urlContext": {}}]
    assert answer.choices[0].message.content == "Hello from the fake Gemini."  # grounding not shown
    stream = sdk.chat.completions.create(model="gemini-search", messages=USER, tools=[WEATHER], stream=True)
    assert (
        "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        == "Hello from the fake Gemini."
    )
    tools = fakes[0].requests[-1].json["tools"]
    assert tools[0]["functionDeclarations"][0]["name"] == "get_weather"
    assert tools[1:] == [{"googleSearch": {}}, {"urlContext": {}}]


def test_n_choices_are_gemini_candidates_streamed_or_not(sdk, fakes):
    completion = sdk.chat.completions.create(model="gemini", messages=USER, n=3)
    assert [c.message.content for c in completion.choices] == [
        "Hello from the fake Gemini.",
        "Hello from the fake Gemini. (candidate 1)",
        "Hello from the fake Gemini. (candidate 2)",
    ]
    assert fakes[0].requests[-1].json["generationConfig"] == {"candidateCount": 3}
    assert completion.usage.completion_tokens == 21  # Google counts every candidate's tokens
    chunks = list(
        sdk.chat.completions.create(
            model="gemini", messages=USER, n=2, stream=True, stream_options={"include_usage": True}
        )
    )
    texts = ["", ""]
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == ["Hello from the fake Gemini.", "Hello from the fake Gemini. (candidate 1)"]
    finishes = [(c.index, c.finish_reason) for chunk in chunks for c in chunk.choices if c.finish_reason]
    assert sorted(finishes) == [(0, "stop"), (1, "stop")] and chunks[-1].usage.completion_tokens == 14
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="gemini", messages=USER, n=9)
    assert caught.value.body["param"] == "n"


def test_safety_blocks_end_with_content_filter(sdk, fakes):
    fakes[0].script(Reply(text="", finish_reason="SAFETY"), Reply(block_reason="PROHIBITED_CONTENT"))
    for _ in range(2):
        completion = sdk.chat.completions.create(model="gemini", messages=USER)
        assert completion.choices[0].finish_reason == "content_filter"
        assert completion.choices[0].message.content is None
    fakes[0].script(Reply(text="", finish_reason="RECITATION"), Reply(block_reason="SAFETY"))
    for _ in range(2):
        chunks = list(sdk.chat.completions.create(model="gemini", messages=USER, stream=True))
        assert chunks[-1].choices[0].finish_reason == "content_filter"


def test_thoughts_are_not_shown(sdk, fakes):
    fakes[0].default = Reply(thought=True, thoughts_tokens=5)
    completion = sdk.chat.completions.create(model="gemini", messages=USER)
    assert completion.choices[0].message.content == "Hello from the fake Gemini."
    assert completion.usage.completion_tokens_details.reasoning_tokens == 5
    chunks = list(sdk.chat.completions.create(model="gemini", messages=USER, stream=True))
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello from the fake Gemini."
    )


# -- streams -------------------------------------------------------------------------------------
def test_stream_of_text_with_usage_when_asked(sdk, fakes):
    fakes[0].default = Reply(text="One two three four.", chunks=4)
    chunks = list(
        sdk.chat.completions.create(
            model="gemini", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) == 4 and "".join(texts) == "One two three four."
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and (
        chunks[-1].usage.prompt_tokens,
        chunks[-1].usage.completion_tokens,
    ) == (
        2,
        7,
    )
    seen = fakes[0].requests[-1]
    assert (seen.path, seen.query) == ("/v1beta/models/gemini-fake-1:streamGenerateContent", "alt=sse")
    plain = list(sdk.chat.completions.create(model="gemini", messages=USER, stream=True))
    assert all(c.usage is None for c in plain) and plain[-1].choices[0].finish_reason == "stop"


def test_stream_of_parallel_tool_calls(sdk, fakes):
    fakes[0].default = Reply(
        text="Let me look.", calls=[("get_weather", {"city": "Paris"}), ("get_weather", {})]
    )
    chunks = list(sdk.chat.completions.create(model="gemini", messages=USER, tools=[WEATHER], stream=True))
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or ()]
    assert [(c.index, c.function.name, orjson.loads(c.function.arguments)) for c in calls] == [
        (0, "get_weather", {"city": "Paris"}),
        (1, "get_weather", {}),
    ]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_an_error_event_before_the_first_token_fails_over(sdk, fakes):
    one, two, _ = fakes
    one.script(Reply(error_after=0))
    raw = sdk.chat.completions.with_raw_response.create(model="gemini-pair", messages=USER, stream=True)
    assert raw.headers["x-llm-deployment"] == "pair-b"
    assert (
        "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        == "Hello from the fake Gemini."
    )


@pytest.mark.parametrize(
    "reply", [Reply(error_after=2, chunk_delay_s=0.05), Reply(cut_after=2, chunk_delay_s=0.05)]
)
def test_a_stream_broken_after_the_first_token_ends_with_an_error_event(sdk, fakes, reply):
    fakes[0].default = reply
    got = ""
    with pytest.raises(openai.APIError, match="interrupted|ended early"):
        for chunk in sdk.chat.completions.create(model="gemini", messages=USER, stream=True):
            got += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert got.startswith("Hello")


# -- errors and failover -------------------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 503])
def test_gemini_failing_before_the_first_byte_fails_over_to_another_provider(sdk, fakes, status):
    one, _, gpt = fakes
    one.script(Reply(status=status, error_message="Resource has been exhausted (e.g. check quota)."))
    stream = sdk.chat.completions.with_raw_response.create(model="mixed", messages=USER, stream=True)
    assert stream.headers["x-llm-deployment"] == "mixed-0" and stream.headers["x-llm-attempts"] == "2"
    assert "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices) == "tok0 tok1 tok2 "
    assert len(one.requests) == 1 and gpt.requests[-1].json["model"] == "mixed-upstream"


def test_a_gemini_400_is_passed_on_and_all_unavailable_is_a_502(sdk, fakes):
    one, two, _ = fakes
    one.script(Reply(status=400, error_message="* GenerateContentRequest.contents: bad"))
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="gemini", messages=USER)
    assert caught.value.body["message"] == "* GenerateContentRequest.contents: bad"
    assert (caught.value.body["type"], caught.value.body["code"]) == (
        "invalid_request_error",
        "invalid_argument",
    )
    one.script(Reply(status=503))
    two.script(Reply(status=503))
    response = httpx2.post(
        f"{sdk.base_url}chat/completions", json={"model": "gemini-pair", "messages": USER}, timeout=20
    )
    assert assert_error_shape(response, 502)["type"] == "upstream_error"


def test_completions_are_not_served_by_gemini(sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.completions.create(model="gemini", prompt="Hi")
    assert caught.value.body["code"] == "unsupported_endpoint"


# -- embeddings ----------------------------------------------------------------------------------
def test_embeddings_one_text_and_a_batch(sdk, fakes):
    one = fakes[0]
    single = sdk.embeddings.create(model="embed", input="hello world", encoding_format="float")
    assert len(single.data) == 1 and len(single.data[0].embedding) == 8
    assert one.requests[-1].path == "/v1beta/models/gemini-embedding-fake:embedContent"
    assert one.requests[-1].json == {"content": {"parts": [{"text": "hello world"}]}}
    batch = sdk.embeddings.create(model="embed", input=["a", "b", "c"], dimensions=4)  # base64 by default
    assert [d.index for d in batch.data] == [0, 1, 2] and all(len(d.embedding) == 4 for d in batch.data)
    assert one.requests[-1].path == "/v1beta/models/gemini-embedding-fake:batchEmbedContents"
    assert one.requests[-1].json["requests"][1] == {
        "model": "models/gemini-embedding-fake",
        "content": {"parts": [{"text": "b"}]},
        "outputDimensionality": 4,
    }
    raw = httpx2.post(
        f"{sdk.base_url}embeddings",
        json={"model": "embed", "input": "hello world", "encoding_format": "base64"},
        timeout=20,
    ).json()
    decoded = struct.unpack("<8f", base64.b64decode(raw["data"][0]["embedding"]))
    assert [round(v, 4) for v in decoded] == single.data[0].embedding


# -- the anthropic SDK on /v1/messages, the openai SDK on /v1/responses --------------------------
def test_messages_to_gemini(claude_sdk, fakes):
    message = claude_sdk.messages.create(model="gemini", max_tokens=50, system="Be brief.", messages=USER)
    assert message.content[0].text == "Hello from the fake Gemini."
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 7)
    seen = fakes[0].requests[-1].json
    assert seen["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert seen["generationConfig"] == {"maxOutputTokens": 50}


def test_messages_stream_to_gemini(claude_sdk, fakes):
    fakes[0].default = Reply(text="One two three.", chunks=3, prompt_tokens=11, candidates_tokens=5)
    with claude_sdk.messages.stream(model="gemini", max_tokens=50, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "One two three." and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 5)


def test_messages_with_tools_over_two_turns_to_gemini(claude_sdk, fakes):
    one = fakes[0]
    one.script(Reply(text="", calls=[("get_weather", {"city": "Lima"})]))
    message = claude_sdk.messages.create(
        model="gemini",
        max_tokens=50,
        messages=USER,
        tools=[CLAUDE_WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert message.stop_reason == "tool_use"
    assert (message.content[0].name, message.content[0].input) == ("get_weather", {"city": "Lima"})
    assert one.requests[-1].json["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    follow = claude_sdk.messages.create(
        model="gemini",
        max_tokens=50,
        tools=[CLAUDE_WEATHER],
        messages=[
            *USER,
            {"role": "assistant", "content": [b.model_dump() for b in message.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": message.content[0].id, "content": "Cloudy"}
                ],
            },
        ],
    )
    assert follow.content[0].text == "Hello from the fake Gemini."
    assert one.requests[-1].json["contents"][2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "Cloudy"}}}],
    }


def test_messages_stream_of_tool_calls_from_gemini(claude_sdk, fakes):
    fakes[0].default = Reply(text="Checking.", calls=[("get_weather", {"city": "Kyiv"})])
    with claude_sdk.messages.stream(
        model="gemini", max_tokens=50, messages=USER, tools=[CLAUDE_WEATHER]
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"city": "Kyiv"} and final.stop_reason == "tool_use"


def test_responses_to_gemini(sdk, fakes):
    response = sdk.responses.create(model="gemini", input="Say hello", instructions="Be brief.")
    assert response.output_text == "Hello from the fake Gemini."
    assert response.usage.input_tokens == 4 and response.usage.output_tokens == 7
    assert fakes[0].requests[-1].json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    with sdk.responses.stream(model="gemini", input="Say hello") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hello from the fake Gemini." and final.status == "completed"


def test_responses_logprobs_from_gemini(sdk, fakes):
    response = sdk.responses.create(
        model="gemini", input="Say hello", top_logprobs=1, include=["message.output_text.logprobs"]
    )
    assert fakes[0].requests[-1].json["generationConfig"] == {"responseLogprobs": True, "logprobs": 1}
    logprobs = response.output[0].content[0].logprobs
    assert "".join(t.token for t in logprobs) == "Hello from the fake Gemini."
    assert [[top.token for top in t.top_logprobs] for t in logprobs[:1]] == [["Hello"]]


def test_responses_with_a_function_call_to_gemini(sdk, fakes):
    fakes[0].script(Reply(text="", calls=[("get_weather", {"city": "Bern"})]))
    tool = {"type": "function", **WEATHER["function"]}
    response = sdk.responses.create(model="gemini", input="Weather in Bern?", tools=[tool])
    call = next(item for item in response.output if item.type == "function_call")
    assert (call.name, orjson.loads(call.arguments)) == ("get_weather", {"city": "Bern"})
    follow = sdk.responses.create(
        model="gemini",
        tools=[tool],
        previous_response_id=response.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Snow"}],
    )
    assert follow.output_text == "Hello from the fake Gemini."
    assert fakes[0].requests[-1].json["contents"][-1] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "Snow"}}}],
    }


# -- the usage record ----------------------------------------------------------------------------
class _Contexts:
    """Keeps each request's context, read after the stack answered (what metrics, limits and
    the ledger read)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[Any] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and "llm" in scope.get("state", {}):  # not /metrics
            self.seen.append(scope["state"]["llm"])


@pytest.mark.parametrize("stream", [False, True])
async def test_the_usage_record_is_what_gemini_reported(asgi_client, fakes, stream):
    one = fakes[0]
    one.default = Reply(
        prompt_tokens=120, cached_tokens=100, candidates_tokens=30, thoughts_tokens=12, thought=True
    )
    config = Config.from_dict(
        {
            "models": [{"name": "gemini", "deployments": [gemini_deployment("g", one)]}],
            "metrics": {"prometheus": {"path": "/metrics"}},
        }
    )
    app = _Contexts(build_app(config))
    client = asgi_client(app=app)
    body: dict[str, Any] = {"model": "gemini", "messages": USER, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    usage = app.seen[-1].usage
    assert (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_prompt_tokens,
        usage.reasoning_tokens,
    ) == (
        120,
        42,
        100,
        12,
    )
    if stream:
        last = orjson.loads(response.text.strip().split("\n\n")[-2].removeprefix("data: "))
        reported = last["usage"]
    else:
        reported = response.json()["usage"]
    assert reported == {
        "prompt_tokens": 120,
        "completion_tokens": 42,
        "total_tokens": 162,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 12},
    }
    exposition = (await client.get("/metrics")).text
    kinds = dict(
        re.findall(
            r'asgi_llm_tokens_total\{deployment="g",kind="(\w+)",model="gemini"\} ([0-9.]+)', exposition
        )
    )
    assert {k: float(v) for k, v in kinds.items() if float(v)} == {
        "input": 20.0,
        "cache_read": 100.0,
        "output": 30.0,
        "reasoning": 12.0,
    }
