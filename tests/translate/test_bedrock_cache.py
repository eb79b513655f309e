"""`cache_control` marks -> Converse `cachePoint` blocks (translate/bedrock_cache.py)."""

from __future__ import annotations

import pytest

from asgi_llm.errors import InvalidRequest
from asgi_llm.translate.bedrock import chat_to_converse
from asgi_llm.translate.bedrock_cache import NONE, cache_points_for, has_cache_marks
from asgi_llm.translate.inbound import chat_form_with_cache_marks, messages_to_chat
from tests.fakes.bedrock_checks import cache_point_problem

EPHEMERAL = {"type": "ephemeral"}
POINT = {"cachePoint": {"type": "default"}}
CLAUDE_4 = cache_points_for("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    "cache_control": EPHEMERAL,
}


def test_which_models_take_cache_points():
    for model in (
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "global.anthropic.claude-opus-4-5-20251101-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0",
    ):
        points = cache_points_for(model)
        assert (points.messages, points.tools) == (True, True), model
    nova = cache_points_for("us.amazon.nova-pro-v1:0")
    assert (nova.messages, nova.tools) == (True, False)
    for model in (
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "meta.llama3-70b-instruct-v1:0",
        "arn:aws:x/abc",
    ):
        assert cache_points_for(model) is NONE


def test_chat_marks_become_cache_points_after_the_marked_block():
    payload = {
        "model": "m",
        "messages": [
            {
                "role": "system",
                "content": [{"type": "text", "text": "Long rules.", "cache_control": EPHEMERAL}],
            },
            {
                "role": "user",
                "content": "First question.",
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            },
            {"role": "assistant", "content": "An answer."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Document.", "cache_control": EPHEMERAL},
                    {"type": "text", "text": "Question?"},
                ],
            },
        ],
        "tools": [TOOL],
    }
    body = chat_to_converse(payload, CLAUDE_4)
    assert body["system"] == [{"text": "Long rules."}, POINT]
    assert body["messages"][0]["content"] == [
        {"text": "First question."},
        {"cachePoint": {"type": "default", "ttl": "1h"}},
    ]
    assert body["messages"][2]["content"] == [{"text": "Document."}, POINT, {"text": "Question?"}]
    assert body["toolConfig"]["tools"][1] == POINT
    assert cache_point_problem(body, "us.anthropic.claude-sonnet-4-5-20250929-v1:0") is None
    # A model without prompt caching gets the same request without the points.
    plain = chat_to_converse(payload)
    assert plain["system"] == [{"text": "Long rules."}] and len(plain["toolConfig"]["tools"]) == 1
    assert all("cachePoint" not in block for turn in plain["messages"] for block in turn["content"])
    # Nova caches system and messages, not tools.
    nova = chat_to_converse(payload, cache_points_for("amazon.nova-lite-v1:0"))
    assert nova["system"][-1] == POINT and nova["toolConfig"]["tools"] == plain["toolConfig"]["tools"]


def test_a_marked_tool_result_is_followed_by_its_point_and_points_never_repeat():
    payload = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "Look it up."},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": [{"type": "text", "text": "Found.", "cache_control": EPHEMERAL}],
                "cache_control": EPHEMERAL,
            },
        ],
        "tools": [TOOL],
    }
    body = chat_to_converse(payload, CLAUDE_4)
    assert body["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": "c1", "content": [{"text": "Found."}]}},
        POINT,
    ]


@pytest.mark.parametrize(
    "mark,param",
    [
        ({"type": "persistent"}, "messages[0].content[0].cache_control"),
        ("ephemeral", "messages[0].content[0].cache_control"),
        ({"type": "ephemeral", "ttl": "2h"}, "messages[0].content[0].cache_control.ttl"),
    ],
)
def test_a_malformed_mark_is_refused_by_name_even_where_it_would_be_dropped(mark, param):
    payload = {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": mark}]}],
    }
    for points in (CLAUDE_4, NONE):
        with pytest.raises(InvalidRequest) as caught:
            chat_to_converse(payload, points)
        assert caught.value.param == param


def test_messages_marks_reach_the_chat_form_made_for_bedrock_only():
    request = {
        "model": "claude",
        "max_tokens": 10,
        "system": [{"type": "text", "text": "Rules.", "cache_control": EPHEMERAL}],
        "tools": [{"name": "lookup", "input_schema": {"type": "object"}, "cache_control": EPHEMERAL}],
        "messages": [
            {"role": "user", "content": "Look."},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "t1",
                        "name": "lookup",
                        "input": {},
                        "cache_control": EPHEMERAL,
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "cache_control": EPHEMERAL}
                ],
            },
        ],
    }
    assert has_cache_marks(request)
    assert not has_cache_marks(
        {**request, "system": "Rules.", "tools": [], "messages": request["messages"][:1]}
    )
    assert "cache_control" not in str(messages_to_chat(request))  # what the layers and OpenAI see
    form = chat_form_with_cache_marks(request)
    assert form["messages"][0]["content"][0]["cache_control"] == EPHEMERAL
    assert form["tools"][0]["cache_control"] == EPHEMERAL
    assert (
        form["messages"][2]["cache_control"] == EPHEMERAL
        and form["messages"][3]["cache_control"] == EPHEMERAL
    )
    body = chat_to_converse(form, CLAUDE_4)
    assert body["system"] == [{"text": "Rules."}, POINT]
    assert body["messages"][1]["content"][-1] == POINT and body["messages"][2]["content"][-1] == POINT
    assert body["toolConfig"]["tools"][-1] == POINT
    assert cache_point_problem(body, "anthropic.claude-sonnet-4-5") is None
