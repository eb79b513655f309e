"""Responses requests -> chat requests (asgi_llm/translate/responses_request.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_llm.errors import InvalidRequest
from asgi_llm.request import validate
from asgi_llm.translate import response_input_items, responses_to_chat
from tests.translate.responses_fixtures import counter_ids, fixture_names, load

BASE: dict[str, Any] = {"model": "m", "input": "hi"}
USER = {"role": "user", "content": "hi"}


def chat(**payload: Any) -> dict[str, Any]:
    return responses_to_chat({**BASE, **payload})


def refused(payload: dict[str, Any], history: list[dict[str, Any]] | None = None) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        responses_to_chat({**BASE, **payload}, history)
    assert caught.value.status == 400
    return caught.value


@pytest.mark.parametrize("name", fixture_names("request"))
def test_golden_request_fixture(name):
    case = load(name)
    out = responses_to_chat(case["request"], case.get("history"))
    assert out == case["chat"]
    assert response_input_items(case["request"], new_id=counter_ids()) == case["input_items"]
    validate("chat", out)  # what every later layer checks passes


# -- mapping rows ---------------------------------------------------------------------------------


def test_string_input_is_one_user_message_and_the_model_is_untouched():
    assert responses_to_chat({"model": "my-alias", "input": "hi"}) == {
        "model": "my-alias",
        "messages": [USER],
    }


def test_instructions_lead_as_a_system_message():
    assert chat(instructions="Be brief.")["messages"] == [{"role": "system", "content": "Be brief."}, USER]


@pytest.mark.parametrize("role", ["user", "assistant", "system", "developer"])
def test_message_items_keep_their_role_with_string_content(role):
    out = chat(input=[{"type": "message", "role": role, "content": "x"}])
    assert out["messages"] == [{"role": role, "content": "x"}]


def test_a_message_without_type_is_a_message():
    assert chat(input=[USER])["messages"] == [USER]


def test_input_text_and_input_image_become_text_and_image_url_parts():
    out = chat(
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look"},
                    {"type": "input_image", "image_url": "https://x/cat.png", "detail": "high"},
                    {"type": "input_image", "image_url": "data:image/gif;base64,R0lG"},
                ],
            }
        ]
    )
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lG"}},
    ]


def test_assistant_output_text_parts_join_into_a_string():
    out = chat(
        input=[
            {
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": "a", "annotations": []},
                    {"type": "output_text", "text": "b"},
                ],
            }
        ]
    )
    assert out["messages"] == [{"role": "assistant", "content": "ab"}]


def test_assistant_refusal_parts_keep_the_array_form():
    out = chat(
        input=[
            {
                "role": "assistant",
                "content": [{"type": "output_text", "text": "a"}, {"type": "refusal", "refusal": "no"}],
            }
        ]
    )
    assert out["messages"] == [
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "a"}, {"type": "refusal", "refusal": "no"}],
        }
    ]


def test_consecutive_function_calls_merge_into_one_assistant_message_with_the_text_before_them():
    call = {"type": "function_call", "name": "f", "arguments": "{}"}
    out = chat(
        input=[
            USER,
            {"role": "assistant", "content": "calling"},
            {"type": "reasoning", "id": "rs_1", "summary": []},  # dropped: does not split the turn
            {**call, "call_id": "c1"},
            {**call, "call_id": "c2"},
            {"type": "function_call_output", "call_id": "c1", "output": "1"},
            {"type": "function_call_output", "call_id": "c2", "output": "2"},
            {**call, "call_id": "c3"},
        ]
    )
    calls = [
        {"id": c, "type": "function", "function": {"name": "f", "arguments": "{}"}}
        for c in ("c1", "c2", "c3")
    ]
    assert out["messages"] == [
        USER,
        {"role": "assistant", "content": "calling", "tool_calls": calls[:2]},
        {"role": "tool", "tool_call_id": "c1", "content": "1"},
        {"role": "tool", "tool_call_id": "c2", "content": "2"},
        {"role": "assistant", "content": None, "tool_calls": calls[2:]},
    ]


def test_function_call_output_text_parts_become_tool_message_text_parts():
    out = chat(
        input=[
            {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": "9"}]}
        ]
    )
    assert out["messages"] == [
        {"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": "9"}]}
    ]


@pytest.mark.parametrize(
    "item",
    [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thought"}]},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [],
            "encrypted_content": "gAAA",
            "status": "completed",
        },
        {"type": "reasoning", "id": "rs_1", "summary": [], "content": []},
    ],
)
def test_reasoning_items_without_reasoning_text_are_dropped(item):
    assert chat(input=[USER, item])["messages"] == [USER]


@pytest.mark.parametrize(
    "payload,expected",
    [
        ({"max_output_tokens": 50}, {"max_completion_tokens": 50}),
        ({"temperature": 0.3}, {"temperature": 0.3}),
        ({"top_p": 0.4}, {"top_p": 0.4}),
        ({"user": "u"}, {"user": "u"}),
        ({"safety_identifier": "s"}, {"safety_identifier": "s"}),
        ({"prompt_cache_key": "k"}, {"prompt_cache_key": "k"}),
        ({"prompt_cache_retention": "24h"}, {"prompt_cache_retention": "24h"}),
        ({"parallel_tool_calls": False}, {"parallel_tool_calls": False}),
        ({"reasoning": {"effort": "minimal"}}, {"reasoning_effort": "minimal"}),
        ({"reasoning": {"effort": None, "summary": None, "context": "auto", "mode": "standard"}}, {}),
        ({"text": {"format": {"type": "text"}}}, {}),
        ({"text": {"verbosity": "high"}}, {"verbosity": "high"}),
        ({"text": {"format": {"type": "json_object"}}}, {"response_format": {"type": "json_object"}}),
        (
            {"text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}}},
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "n", "schema": {"type": "object"}},
                }
            },
        ),
        (
            {
                "text": {
                    "format": {
                        "type": "json_schema",
                        "name": "n",
                        "schema": {},
                        "strict": True,
                        "description": "d",
                    }
                }
            },
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "n", "description": "d", "schema": {}, "strict": True},
                }
            },
        ),
        ({"tool_choice": "auto"}, {"tool_choice": "auto"}),
        ({"tool_choice": "none"}, {"tool_choice": "none"}),
        ({"tool_choice": "required"}, {"tool_choice": "required"}),
        (
            {"tool_choice": {"type": "function", "name": "f"}},
            {"tool_choice": {"type": "function", "function": {"name": "f"}}},
        ),
        ({"include": ["message.output_text.logprobs"]}, {"logprobs": True}),
        (
            {"include": ["message.output_text.logprobs"], "top_logprobs": 0},
            {"logprobs": True, "top_logprobs": 0},
        ),
        ({"top_logprobs": 3}, {"logprobs": True, "top_logprobs": 3}),
        ({"top_logprobs": 0}, {}),
        ({"stream": True}, {"stream": True, "stream_options": {"include_usage": True}}),
        ({"stream": False}, {}),
    ],
)
def test_each_request_field_maps_to_its_chat_field(payload, expected):
    assert chat(**payload) == {"model": "m", "messages": [USER], **expected}


def test_function_tools_become_chat_function_tools():
    out = chat(
        tools=[
            {
                "type": "function",
                "name": "f",
                "description": "F.",
                "parameters": {"type": "object"},
                "strict": True,
            },
            {"type": "function", "name": "g", "parameters": None, "strict": None},
        ]
    )
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "f", "description": "F.", "parameters": {"type": "object"}, "strict": True},
        },
        {"type": "function", "function": {"name": "g"}},
    ]


@pytest.mark.parametrize(
    "field,value",
    [
        ("store", False),
        ("previous_response_id", "resp_1"),
        ("metadata", {"a": "b"}),
        ("background", False),
        ("include", ["reasoning.encrypted_content", "message.input_image.image_url"]),
        ("truncation", "disabled"),
        ("truncation", "auto"),
        ("service_tier", "flex"),
        ("stream_options", {"include_obfuscation": False}),
        ("max_tool_calls", 5),
        ("conversation", None),
        ("prompt", None),
        ("context_management", []),
        ("prompt_cache_options", {}),
    ],
)
def test_fields_the_endpoint_handles_or_that_cannot_change_the_answer_pass_and_are_not_carried(field, value):
    assert chat(**{field: value}) == {"model": "m", "messages": [USER]}


def test_history_goes_after_instructions_and_before_input():
    history = [
        USER,
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "yo"}]},
    ]
    out = responses_to_chat({**BASE, "instructions": "I", "input": "again"}, history)
    assert out["messages"] == [
        {"role": "system", "content": "I"},
        USER,
        {"role": "assistant", "content": "yo"},
        {"role": "user", "content": "again"},
    ]


def test_history_alone_is_enough_without_input():
    assert responses_to_chat({"model": "m"}, [USER])["messages"] == [USER]


def test_response_input_items_give_ids_and_status_where_openai_does():
    request = {
        "input": [
            {"role": "assistant", "content": "hi"},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}", "id": None},
            {"type": "function_call_output", "call_id": "c", "output": "1", "id": "fco_x"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
        ]
    }
    assert response_input_items(request, new_id=counter_ids()) == [
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "hi", "annotations": []}],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "c",
            "name": "f",
            "arguments": "{}",
        },
        {"id": "fco_x", "type": "function_call_output", "status": "completed", "call_id": "c", "output": "1"},
        {"type": "reasoning", "id": "rs_1", "summary": []},
    ]


def test_response_input_items_ids_are_unique_by_default():
    items = response_input_items({"input": [USER, USER, USER]})
    ids = [item["id"] for item in items]
    assert len(set(ids)) == 3 and all(i.startswith("msg_") and len(i) == 52 for i in ids)


def test_the_payload_is_not_mutated():
    item = {"role": "user", "content": [{"type": "input_text", "text": "x"}]}
    payload = {**BASE, "input": [item]}
    responses_to_chat(payload)
    response_input_items(payload)
    assert payload == {**BASE, "input": [{"role": "user", "content": [{"type": "input_text", "text": "x"}]}]}


# -- refusals -------------------------------------------------------------------------------------

WEB = {"type": "web_search"}


@pytest.mark.parametrize(
    "payload,param",
    [
        ({"reasoning": {"summary": "auto"}}, "reasoning.summary"),
        ({"reasoning": {"generate_summary": "concise"}}, "reasoning.generate_summary"),
        ({"reasoning": {"context": "all_turns"}}, "reasoning.context"),
        ({"reasoning": {"mode": "pro"}}, "reasoning.mode"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"context_management": [{"type": "compaction"}]}, "context_management"),
        ({"moderation": {"model": "omni-moderation-latest"}}, "moderation"),
        ({"prompt_cache_options": {"prewarm": True}}, "prompt_cache_options"),
        ({"access_programs": {"cyber": "standard"}}, "access_programs"),
        ({"background_options": {"completion_window": "2h"}}, "background_options"),
        ({"image": {"context_compression": "enabled"}}, "image"),
        ({"frobnicate": 1}, "frobnicate"),
        ({"tools": [WEB]}, "tools[0].type"),
        ({"tools": [{"type": "web_search_preview"}]}, "tools[0].type"),
        ({"tools": [{"type": "file_search", "vector_store_ids": []}]}, "tools[0].type"),
        ({"tools": [{"type": "computer_use_preview"}]}, "tools[0].type"),
        ({"tools": [{"type": "code_interpreter", "container": "auto"}]}, "tools[0].type"),
        ({"tools": [{"type": "image_generation"}]}, "tools[0].type"),
        ({"tools": [{"type": "mcp", "server_label": "x"}]}, "tools[0].type"),
        ({"tools": [{"type": "local_shell"}]}, "tools[0].type"),
        ({"tools": [{"type": "shell"}]}, "tools[0].type"),
        ({"tools": [{"type": "custom", "name": "x"}]}, "tools[0].type"),
        ({"tools": [{"type": "namespace", "name": "x", "tools": []}]}, "tools[0].type"),
        ({"tools": [{"type": "apply_patch"}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "name": "f"}, WEB]}, "tools[1].type"),
        ({"tools": [{"type": "function", "name": "f", "defer_loading": True}]}, "tools[0].defer_loading"),
        (
            {"tools": [{"type": "function", "name": "f", "allowed_callers": ["programmatic"]}]},
            "tools[0].allowed_callers",
        ),
        ({"tools": [{"type": "function", "name": "f", "output_schema": {}}]}, "tools[0].output_schema"),
        ({"tools": [{"type": "function", "name": "f", "async": True}]}, "tools[0].async"),
        ({"tools": [{"type": "function", "name": "f", "extra": 1}]}, "tools[0].extra"),
        ({"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}}, "tool_choice"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
        ({"tool_choice": {"type": "mcp", "server_label": "x"}}, "tool_choice"),
        ({"tool_choice": {"type": "custom", "name": "x"}}, "tool_choice"),
        ({"tool_choice": {"type": "function", "name": "f", "extra": 1}}, "tool_choice.extra"),
        ({"text": {"format": {"type": "json_schema", "name": "n", "schema": {}, "x": 1}}}, "text.format.x"),
        ({"text": {"other": 1}}, "text.other"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
        ({"input": [{"type": "computer_call_output", "call_id": "c"}]}, "input[0].type"),
        ({"input": [{"type": "custom_tool_call", "call_id": "c"}]}, "input[0].type"),
        (
            {
                "input": [
                    USER,
                    {
                        "type": "reasoning",
                        "id": "r",
                        "summary": [],
                        "content": [{"type": "reasoning_text", "text": "t"}],
                    },
                ]
            },
            "input[1].content",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}]},
            "input[0].content[0].type",
        ),
        ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input[0].content[0].type"),
        (
            {"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://x"}]}]},
            "input[0].content[0].type",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}]},
            "input[0].content[0].type",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": "x", "y": 1}]}]},
            "input[0].content[0].y",
        ),
        ({"input": [{"role": "user", "content": "x", "name": "bob"}]}, "input[0].name"),
        (
            {
                "input": [
                    {
                        "type": "function_call",
                        "call_id": "c",
                        "name": "f",
                        "arguments": "{}",
                        "namespace": "ns",
                    }
                ]
            },
            "input[0].namespace",
        ),
        (
            {
                "input": [
                    {
                        "type": "function_call",
                        "call_id": "c",
                        "name": "f",
                        "arguments": "{}",
                        "caller": {"type": "program", "caller_id": "p"},
                    }
                ]
            },
            "input[0].caller",
        ),
        (
            {
                "input": [
                    {
                        "type": "function_call_output",
                        "call_id": "c",
                        "output": [{"type": "input_image", "image_url": "https://x"}],
                    }
                ]
            },
            "input[0].output[0].type",
        ),
    ],
)
def test_what_chat_cannot_carry_is_refused_by_name(payload, param):
    error = refused(payload)
    assert error.code == "unsupported_parameter"
    assert error.param == param
    assert "Responses" in error.message and "Anthropic" not in error.message


@pytest.mark.parametrize(
    "payload,param,code",
    [
        ({"input": None}, "input", "missing_required_parameter"),
        ({"input": 5}, "input", "invalid_type"),
        ({"input": []}, "input", "invalid_value"),
        ({"input": [{"type": "reasoning", "id": "r", "summary": []}]}, "input", "invalid_value"),
        ({"input": ["hi"]}, "input[0]", "invalid_type"),
        ({"input": [{"content": "x"}]}, "input[0]", "invalid_type"),
        ({"input": [{"type": "message", "role": "tool", "content": "x"}]}, "input[0].role", "invalid_value"),
        ({"input": [{"role": "user", "content": 5}]}, "input[0].content", "invalid_type"),
        ({"input": [{"role": "user", "content": [{"text": "x"}]}]}, "input[0].content[0]", "invalid_type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0].image_url",
            "missing_required_parameter",
        ),
        (
            {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
            "invalid_type",
        ),
        (
            {"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
            "input[0].arguments",
            "invalid_type",
        ),
        (
            {"input": [{"type": "function_call_output", "output": "x"}]},
            "input[0].call_id",
            "missing_required_parameter",
        ),
        (
            {"input": [{"type": "function_call_output", "call_id": "c", "output": 5}]},
            "input[0].output",
            "invalid_type",
        ),
        ({"instructions": ["x"]}, "instructions", "invalid_type"),
        ({"tools": {}}, "tools", "invalid_type"),
        ({"tools": ["f"]}, "tools[0]", "invalid_type"),
        ({"tools": [{"type": "function"}]}, "tools[0].name", "invalid_type"),
        ({"tool_choice": "sometimes"}, "tool_choice", "invalid_value"),
        ({"tool_choice": {"type": "function"}}, "tool_choice.name", "invalid_type"),
        ({"text": "json"}, "text", "invalid_type"),
        ({"text": {"format": {"type": "yaml"}}}, "text.format.type", "invalid_value"),
        (
            {"text": {"format": {"type": "json_schema", "schema": {}}}},
            "text.format.name",
            "missing_required_parameter",
        ),
        (
            {"text": {"format": {"type": "json_schema", "name": "n"}}},
            "text.format.schema",
            "missing_required_parameter",
        ),
        ({"reasoning": "high"}, "reasoning", "invalid_type"),
        ({"include": "all"}, "include", "invalid_type"),
        ({"top_logprobs": "2"}, "top_logprobs", "invalid_type"),
        ({"stream": "yes"}, "stream", "invalid_type"),
    ],
)
def test_malformed_fields_are_a_400_naming_them(payload, param, code):
    error = refused(payload)
    assert (error.param, error.code) == (param, code)


def test_what_the_previous_conversation_cannot_carry_names_previous_response_id():
    history = [USER, {"type": "web_search_call", "id": "ws_1", "status": "completed"}]
    error = refused({"previous_response_id": "resp_1"}, history)
    assert error.param == "previous_response_id"
    assert error.code == "unsupported_parameter"
    assert "history[1].type" in error.message


# -- any body: translated or refused, never a crash ----------------------------------------------

fragments = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "role",
                    "content",
                    "text",
                    "call_id",
                    "name",
                    "arguments",
                    "output",
                    "image_url",
                    "file_id",
                    "refusal",
                    "summary",
                    "format",
                    "schema",
                    "effort",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["input", "instructions", "tools", "tool_choice", "text", "reasoning", "include", "stream"]
        ),
        fragments,
    ),
    st.none() | st.lists(fragments, max_size=3),
)
def test_any_responses_body_is_translated_or_refused_with_a_400(payload, history):
    try:
        responses_to_chat({"model": "m", **payload}, history)
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.param
