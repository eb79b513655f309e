"""Anthropic Messages requests -> OpenAI chat (asgi_llm/translate/inbound.py); the round
trip is in test_outbound.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_llm.errors import InvalidRequest
from asgi_llm.translate import messages_to_chat
from asgi_llm.translate.inbound import chat_form
from tests.translate.test_outbound import anything

USER = {"role": "user", "content": "hi"}


def test_anthropic_request_becomes_a_chat_request():
    out = messages_to_chat(
        {
            "model": "claude-ish",
            "max_tokens": 100,
            "system": "Be brief.",
            "stream": True,
            "stop_sequences": ["###"],
            "temperature": 0.5,
            "top_k": 5,
            "metadata": {"user_id": "u"},
            "tools": [{"name": "f", "description": "F.", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "calling"},
                        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1]}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42", "is_error": False},
                        {"type": "text", "text": "so?"},
                    ],
                },
            ],
        }
    )
    assert out == {
        "model": "claude-ish",
        "max_tokens": 100,
        "temperature": 0.5,
        "top_k": 5,
        "stop": ["###"],
        "user": "u",
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "description": "F.", "parameters": {"type": "object"}},
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lG"}},
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "calling"}],
                "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a":[1]}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "42"},
            {"role": "user", "content": [{"type": "text", "text": "so?"}]},
        ],
    }


@pytest.mark.parametrize(
    "payload,param",
    [
        ({"thinking": {"type": "adaptive"}}, "thinking.type"),
        ({"mcp_servers": []}, "mcp_servers"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
            "messages[0].content[0].type",
        ),
    ],
)
def test_inbound_fields_without_an_equivalent_are_refused_by_name(payload, param):
    with pytest.raises(InvalidRequest) as caught:
        messages_to_chat({"model": "m", "max_tokens": 5, "messages": [USER], **payload})
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == param


def test_disabled_thinking_is_accepted():
    out = messages_to_chat(
        {"model": "m", "max_tokens": 5, "messages": [USER], "thinking": {"type": "disabled"}}
    )
    assert out["messages"] == [USER]


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "model",
                "messages",
                "system",
                "tools",
                "tool_choice",
                "max_tokens",
                "stop_sequences",
                "metadata",
            ]
        ),
        anything,
    )
)
def test_any_inbound_body_is_translated_or_refused_with_a_400(payload):
    try:
        messages_to_chat(payload)
    except InvalidRequest as exc:
        assert exc.status == 400


# -- thinking, and the chat form of what chat cannot say ----------------------------------
@pytest.mark.parametrize(
    ("budget", "effort"), [(1024, "low"), (4095, "low"), (4096, "medium"), (16384, "high")]
)
def test_a_thinking_budget_becomes_a_reasoning_effort(budget, effort):
    out = messages_to_chat(
        {
            "model": "m",
            "max_tokens": 20000,
            "messages": [USER],
            "thinking": {"type": "enabled", "budget_tokens": budget},
        }
    )
    assert out["reasoning_effort"] == effort


def test_thinking_blocks_in_history_are_left_out_of_the_chat_form():
    out = messages_to_chat(
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hm", "signature": "s"},
                        {"type": "redacted_thinking", "data": "d"},
                        {"type": "text", "text": "Hello."},
                    ],
                },
                USER,
            ],
        }
    )
    assert out["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]}


def test_the_chat_form_leaves_out_what_chat_cannot_say_and_keeps_the_first_refusal():
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}
    request = {
        "model": "m",
        "max_tokens": 5,
        "container": "c1",
        "tools": [
            {"type": "web_search_20250305", "name": "web_search"},
            {"name": "f", "input_schema": {"type": "object"}},
        ],
        "messages": [
            {"role": "user", "content": [pdf, {"type": "text", "text": "Summarise."}]},
            {
                "role": "assistant",
                "content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {}}]},
                    {"type": "text", "text": "And?"},
                ],
            },
        ],
    }
    form, refused = chat_form(request)
    assert refused is not None and refused.code == "unsupported_parameter" and refused.param == "container"
    assert form["tools"] == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    ]
    assert form["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Summarise."}]},
        {"role": "assistant", "content": None},
        {"role": "tool", "tool_call_id": "t", "content": []},
        {"role": "user", "content": [{"type": "text", "text": "And?"}]},
    ]
    assert chat_form({"model": "m", "max_tokens": 5, "messages": [USER]}) == (
        {"model": "m", "max_tokens": 5, "messages": [USER]},
        None,
    )


def test_a_malformed_request_is_still_a_400_in_the_lenient_form():
    with pytest.raises(InvalidRequest) as caught:
        chat_form({"model": "m", "container": "c", "messages": [USER]})  # no max_tokens
    assert caught.value.param == "max_tokens"
    form, _ = chat_form({"model": "m", "messages": [USER]}, count_only=True)  # count_tokens has none
    assert "max_tokens" not in form
