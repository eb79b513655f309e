"""Anthropic Messages requests -> OpenAI chat (asgi_llm/translate/inbound.py); the round
trip is in test_outbound.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_llm.errors import InvalidRequest
from asgi_llm.translate import messages_to_chat
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
