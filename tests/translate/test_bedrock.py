"""The Bedrock translations (translate/bedrock*.py) against golden fixtures, one direction per
fixture kind (tests/translate/fixtures/bedrock/): chat -> Converse requests, Converse answers
-> chat completions, ConverseStream events -> chunks, embeddings both ways. The outputs are
also read back with the openai SDK's own models; refusals name the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from asgi_llm.errors import InvalidRequest
from asgi_llm.translate.bedrock import chat_to_converse
from asgi_llm.translate.bedrock_answer import chat_usage, converse_to_completion, finish_reason_for
from asgi_llm.translate.bedrock_embeddings import embedding_family, embeddings_answer, embeddings_request
from asgi_llm.translate.bedrock_stream import ConverseToChatStream

FIXTURES = Path(__file__).parent / "fixtures" / "bedrock"
IDS = {"ident": "chatcmpl-test", "model": "anthropic.claude-test", "created": 1700000000}


def names(kind: str) -> list[str]:
    found = sorted(path.stem for path in FIXTURES.glob(f"{kind}_*.json"))
    assert found, f"no {kind} fixtures in {FIXTURES}"
    return found


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.mark.parametrize("name", names("request"))
def test_chat_requests_become_converse_requests(name):
    case = load(name)
    assert chat_to_converse(case["chat"]) == case["converse"]


@pytest.mark.parametrize("name", names("answer"))
def test_converse_answers_become_chat_completions(name):
    case = load(name)
    completion = converse_to_completion(case["converse"], **IDS, json_tool=case.get("json_tool"))
    assert completion == case["completion"]
    ChatCompletion.model_validate(completion)


def stream_chunks(events: list[list[Any]], include_usage: bool, json_tool: str | None = None) -> list[Any]:
    translator = ConverseToChatStream(**IDS, include_usage=include_usage, json_tool=json_tool)
    out = b"".join(translator.event(kind, payload) for kind, payload in events).decode()
    assert translator.done
    return [e[6:] if e == "data: [DONE]" else json.loads(e[6:]) for e in out.split("\n\n") if e]


@pytest.mark.parametrize("name", names("stream"))
def test_converse_stream_events_become_chunks(name):
    case = load(name)
    chunks = stream_chunks(case["events"], case["include_usage"], case.get("json_tool"))
    assert chunks == case["chunks"]
    assert chunks[-1] == "[DONE]"
    for chunk in chunks[:-1]:
        ChatCompletionChunk.model_validate(chunk)


@pytest.mark.parametrize("name", names("embeddings"))
def test_embeddings_both_ways(name):
    case = load(name)
    family = embedding_family(case["model"])
    assert family is not None
    assert embeddings_request(case["request"], family) == case["invoke"]
    answer = embeddings_answer(case["answer"], case["request"], model=case["model"], family=family)
    assert answer == case["embeddings"]
    if "usage" in answer:
        CreateEmbeddingResponse.model_validate(answer)


def test_stop_reasons_map_to_finish_reasons():
    assert [
        finish_reason_for(r)
        for r in (
            "end_turn",
            "stop_sequence",
            "max_tokens",
            "tool_use",
            "guardrail_intervened",
            "content_filtered",
            "something_new",
            None,
        )
    ] == ["stop", "stop", "length", "tool_calls", "content_filter", "content_filter", "stop", "stop"]


def test_usage_without_input_tokens_or_with_a_bad_count_is_unknown():
    assert chat_usage({"outputTokens": 3}) is None
    assert chat_usage({"inputTokens": -1, "outputTokens": 3}) is None
    assert chat_usage({"inputTokens": 2, "outputTokens": 3}) == {
        "prompt_tokens": 2,
        "completion_tokens": 3,
        "total_tokens": 5,
    }


def test_a_stream_ending_at_metadata_without_message_stop_still_finishes():
    chunks = stream_chunks(
        [["contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}], ["metadata", {}]], False
    )
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and chunks[-1] == "[DONE]"


USER = [{"role": "user", "content": "Hi"}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    "payload,param",
    [
        ({"messages": USER, "seed": 7}, "seed"),
        (
            {"messages": USER, "response_format": {"type": "json_object"}, "tools": [WEATHER]},
            "response_format",
        ),
        ({"messages": USER, "logprobs": True}, "logprobs"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages[0].content[0].type",
        ),
        (
            {"messages": USER, "tools": [{"type": "web_search", "function": {"name": "x"}}]},
            "tools[0].type",
        ),
    ],
)
def test_what_converse_cannot_say_is_refused_by_name(payload, param):
    with pytest.raises(InvalidRequest) as caught:
        chat_to_converse(payload)
    assert (caught.value.param, caught.value.code) == (param, "unsupported_parameter")
    assert "Bedrock" in caught.value.message


@pytest.mark.parametrize(
    "url,why",
    [
        ("https://example.com/cat.png", "s3://"),
        ("data:image/png;base64,***", "not valid base64"),
        ("data:image/tiff;base64,AAAA", "png, jpeg, gif or webp"),
        ("s3://bucket/cat.bmp", ".png"),
    ],
)
def test_images_bedrock_cannot_take_are_refused_by_field(url, why):
    message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}
    with pytest.raises(InvalidRequest, match=why) as caught:
        chat_to_converse({"messages": [message]})
    assert caught.value.param == "messages[0].content[0].image_url.url"


def test_tool_choice_none_drops_the_tools_unless_the_history_holds_tool_blocks():
    weather = {"type": "function", "function": {"name": "get_weather"}}
    assert "toolConfig" not in chat_to_converse({"messages": USER, "tools": [weather], "tool_choice": "none"})
    history = [
        *USER,
        {
            "role": "assistant",
            "tool_calls": [{"id": "t1", "function": {"name": "get_weather", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "ok"},
    ]
    with pytest.raises(InvalidRequest) as caught:
        chat_to_converse({"messages": history, "tools": [weather], "tool_choice": "none"})
    assert caught.value.param == "tool_choice"


def test_tool_arguments_that_are_not_an_object_are_refused():
    call = {"id": "t1", "function": {"name": "f", "arguments": "[1]"}}
    with pytest.raises(InvalidRequest) as caught:
        chat_to_converse({"messages": [*USER, {"role": "assistant", "tool_calls": [call]}]})
    assert caught.value.param == "messages[1].tool_calls[0].function.arguments"


@pytest.mark.parametrize(
    "family,payload,param",
    [
        ("titan", {"input": ["a", "b"]}, "input"),
        ("titan", {"input": [1, 2, 3]}, "input"),
        ("cohere", {"input": "a", "dimensions": 8}, "dimensions"),
        ("cohere", {"input": ["x"] * 97}, "input"),
        ("titan", {"input": "a", "seed": 1}, "seed"),
    ],
)
def test_embedding_requests_bedrock_cannot_serve_are_refused(family, payload, param):
    with pytest.raises(InvalidRequest) as caught:
        embeddings_request(payload, family)
    assert caught.value.param == param


def test_embedding_families_by_model_id():
    assert [
        embedding_family(m)
        for m in (
            "amazon.titan-embed-text-v2:0",
            "amazon.titan-embed-text-v1",
            "cohere.embed-multilingual-v3",
            "arn:aws:bedrock:us-east-1:123:inference-profile/us.cohere.embed-english-v3",
            "anthropic.claude-3-haiku-20240307-v1:0",
        )
    ] == ["titan", "titan", "cohere", "cohere", None]
