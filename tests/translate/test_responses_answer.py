"""Chat completions -> Responses objects (asgi_llm/translate/responses_answer.py)."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from openai.types.responses import Response

from asgi_llm.translate import chat_to_response, usage_from_response
from asgi_llm.translate.responses_answer import new_item_id
from tests.translate.responses_fixtures import (
    COMPLETED_AT,
    CREATED_AT,
    RESPONSE_ID,
    counter_ids,
    fixture_names,
    load,
)

REQUEST: dict[str, Any] = {"model": "gpt-alias", "input": "hi"}


def completion(message: dict[str, Any], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-x",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        **extra,
    }


def answer(completion_: dict[str, Any], request: dict[str, Any] = REQUEST, **kw: Any) -> dict[str, Any]:
    return chat_to_response(
        completion_, request, response_id=RESPONSE_ID, created_at=CREATED_AT, new_id=counter_ids(), **kw
    )


def strictly_valid(response: dict[str, Any]) -> Response:
    """The SDK's own model, every required field present (model_validate, not construct)."""
    return Response.model_validate(response)


@pytest.mark.parametrize("name", fixture_names("answer"))
def test_golden_answer_fixture(name):
    case = load(name)
    response = chat_to_response(
        case["completion"],
        case["request"],
        response_id=RESPONSE_ID,
        created_at=CREATED_AT,
        completed_at=COMPLETED_AT,
        new_id=counter_ids(),
    )
    assert response == case["response"]
    strictly_valid(response)


def test_the_sdk_model_reads_text_and_tool_calls_back():
    response = answer(
        completion(
            {
                "content": "Checking.",
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
                ],
            },
            "tool_calls",
        )
    )
    parsed = strictly_valid(response)
    assert parsed.output_text == "Checking."
    call = parsed.output[1]
    assert (call.type, call.call_id, call.name, call.arguments) == ("function_call", "call_1", "f", '{"a":1}')


def test_strict_validation_would_catch_a_missing_required_field():
    response = answer(completion({"content": "x"}))
    del response["tools"]
    with pytest.raises(pydantic.ValidationError):
        Response.model_validate(response)


# -- mapping rows ---------------------------------------------------------------------------------


def test_the_object_head():
    response = answer(completion({"content": "x"}), completed_at=5)
    assert {
        k: response[k] for k in ("id", "object", "created_at", "status", "completed_at", "model", "error")
    } == {
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": CREATED_AT,
        "status": "completed",
        "completed_at": 5,
        "model": "gpt-x",
        "error": None,
    }


def test_completed_at_defaults_to_created_at_and_the_model_to_the_requests():
    response = answer({**completion({"content": "x"}), "model": None})
    assert (response["completed_at"], response["model"]) == (CREATED_AT, "gpt-alias")


@pytest.mark.parametrize(
    "finish,status,details",
    [
        ("stop", "completed", None),
        ("tool_calls", "completed", None),
        ("function_call", "completed", None),
        (None, "completed", None),
        ("length", "incomplete", {"reason": "max_output_tokens"}),
        ("content_filter", "incomplete", {"reason": "content_filter"}),
    ],
)
def test_finish_reason_sets_the_status(finish, status, details):
    response = answer(completion({"content": "x"}, finish))
    assert (response["status"], response["incomplete_details"]) == (status, details)
    assert response["output"][-1]["status"] == ("incomplete" if details else "completed")
    assert response["completed_at"] == (CREATED_AT if status == "completed" else None)


def test_only_the_last_item_of_an_incomplete_response_is_incomplete():
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    response = answer(completion({"content": "x", "tool_calls": [call, {**call, "id": "d"}]}, "length"))
    assert [item["status"] for item in response["output"]] == ["completed", "completed", "incomplete"]


def test_text_is_one_message_item_with_one_output_text_part():
    response = answer(completion({"content": "Hello"}))
    assert response["output"] == [
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}],
        }
    ]


def test_content_parts_from_a_server_are_joined():
    response = answer(completion({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}))
    assert strictly_valid(response).output_text == "ab"


def test_a_refusal_is_a_refusal_part_after_any_text():
    response = answer(completion({"content": "Well.", "refusal": "No."}))
    assert response["output"][0]["content"] == [
        {"type": "output_text", "text": "Well.", "annotations": [], "logprobs": []},
        {"type": "refusal", "refusal": "No."},
    ]


def test_each_tool_call_is_a_function_call_item_with_its_own_id():
    calls = [
        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}},
        {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": ""}},
        {"type": "function", "function": {"name": "h", "arguments": {"y": 2}}},  # no id, an object
    ]
    response = answer(completion({"content": None, "tool_calls": calls}, "tool_calls"))
    assert response["output"] == [
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_a",
            "name": "f",
            "arguments": '{"x":1}',
        },
        {
            "id": "fc_2",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_b",
            "name": "g",
            "arguments": "",
        },
        {
            "id": "fc_3",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_1",
            "name": "h",
            "arguments": '{"y":2}',
        },
    ]


def test_default_ids_are_random_hex_and_unique():
    calls = [
        {"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}} for i in range(3)
    ]
    response = chat_to_response(
        completion({"content": "x", "tool_calls": calls}), REQUEST, response_id="r", created_at=0
    )
    ids = [item["id"] for item in response["output"]]
    assert ids[0].startswith("msg_") and all(i.startswith("fc_") for i in ids[1:])
    assert len(set(ids)) == 4 and all(len(i.partition("_")[2]) == 48 for i in ids)
    assert new_item_id("msg") != new_item_id("msg")


@pytest.mark.parametrize(
    "usage,expected",
    [
        (
            {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            {
                "input_tokens": 10,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": 5,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 15,
            },
        ),
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 2},
                "completion_tokens_details": {"reasoning_tokens": 3},
            },
            {
                "input_tokens": 10,
                "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 2},
                "output_tokens": 5,
                "output_tokens_details": {"reasoning_tokens": 3},
                "total_tokens": 15,
            },
        ),
        (None, None),
        ({"prompt_tokens": "10", "completion_tokens": 5}, None),
    ],
)
def test_usage_rows(usage, expected):
    response = answer(completion({"content": "x"}, usage=usage))
    assert response["usage"] == expected
    strictly_valid(response)


def test_echoed_defaults_when_the_request_sets_nothing():
    response = answer(completion({"content": "x"}))
    echoed = {k: v for k, v in response.items() if k not in ("id", "created_at", "output", "usage", "model")}
    assert echoed == {
        "object": "response",
        "status": "completed",
        "background": False,
        "completed_at": CREATED_AT,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "max_tool_calls": None,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "prompt_cache_key": None,
        "prompt_cache_retention": None,
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "user": None,
        "metadata": {},
    }


def test_the_upstreams_service_tier_is_reported():
    assert answer(completion({"content": "x"}, service_tier="flex"))["service_tier"] == "flex"


@pytest.mark.parametrize(
    "completion_",
    [
        {},
        {"choices": []},
        {"choices": [{"index": 0}]},
        {"choices": [{"message": {"tool_calls": [{"function": {}}]}}]},
        {"choices": [{"message": {"tool_calls": {"a": 1}}}]},
    ],
)
def test_what_is_not_a_completion_is_a_value_error(completion_):
    with pytest.raises(ValueError):
        answer(completion_)


# -- usage_from_response --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response,expected",
    [
        (
            {
                "usage": {
                    "input_tokens": 10,
                    "input_tokens_details": {"cached_tokens": 4},
                    "output_tokens": 7,
                    "output_tokens_details": {"reasoning_tokens": 3},
                    "total_tokens": 17,
                }
            },
            (10, 4, 7, 3),
        ),
        ({"usage": {"input_tokens": 10, "output_tokens": 7}}, (10, 0, 7, 0)),
        ({"usage": None}, None),
        ({}, None),
        ({"usage": {"input_tokens": 1.5, "output_tokens": 7}}, None),
        ("not a response", None),
    ],
)
def test_usage_from_a_native_response(response, expected):
    assert usage_from_response(response) == expected


def test_usage_round_trips_through_a_translated_answer():
    usage = {
        "prompt_tokens": 9,
        "completion_tokens": 4,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 1},
    }
    assert usage_from_response(answer(completion({"content": "x"}, usage=usage))) == (9, 2, 4, 1)
