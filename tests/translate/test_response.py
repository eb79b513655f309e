"""Answers, both ways: Anthropic messages <-> chat completions (asgi_llm/translate/response.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_llm.translate import completion_to_message, message_to_completion

MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "text", "text": "Let me "},
        {"type": "text", "text": "check."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 20, "output_tokens": 9},
}


def test_message_becomes_a_completion():
    completion = message_to_completion(MESSAGE, created=123)
    assert completion == {
        "id": "msg_01",
        "object": "chat.completion",
        "created": 123,
        "model": "claude-x",
        "choices": [
            {
                "index": 0,
                "logprobs": None,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "Let me check.",
                    "refusal": None,
                    "reasoning_content": "hmm",
                    "thinking_blocks": [{"type": "thinking", "thinking": "hmm", "signature": "s"}],
                    "tool_calls": [
                        {
                            "id": "toolu_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
    }


@pytest.mark.parametrize(
    "stop,finish",
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop, finish):
    completion = message_to_completion({**MESSAGE, "stop_reason": stop}, created=0)
    assert completion["choices"][0]["finish_reason"] == finish


def test_cache_tokens_count_as_prompt_tokens():
    usage = {
        "input_tokens": 5,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 100,
        "output_tokens": 3,
    }
    completion = message_to_completion({**MESSAGE, "usage": usage}, created=0)
    assert completion["usage"] == {
        "prompt_tokens": 115,
        "completion_tokens": 3,
        "total_tokens": 118,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 10},
    }
    back = completion_to_message(completion)["usage"]
    assert back == {
        "input_tokens": 5,
        "output_tokens": 3,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 10,
    }


def test_a_text_only_message_has_no_tool_calls_and_an_empty_one_null_content():
    completion = message_to_completion({**MESSAGE, "content": [], "stop_reason": "end_turn"}, created=0)
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": None, "refusal": None}


def test_malformed_messages_raise_value_error():
    with pytest.raises(ValueError):
        message_to_completion({"type": "message", "content": "text"}, created=0)
    with pytest.raises(ValueError):
        message_to_completion({"type": "message", "content": [{"type": "tool_use"}]}, created=0)


def test_completion_becomes_a_message():
    completion = {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "model": "gpt-x",
        "created": 1,
        "choices": [
            {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Hi"}}
        ],
        "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5},
    }
    assert completion_to_message(completion) == {
        "id": "msg_chatcmpl-9",
        "type": "message",
        "role": "assistant",
        "model": "gpt-x",
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {"input_tokens": 4, "output_tokens": 1},
    }


def test_a_stop_sequence_chat_cannot_say_comes_back_as_end_turn():
    completion = message_to_completion(
        {**MESSAGE, "stop_reason": "stop_sequence", "stop_sequence": "###"}, created=0
    )
    message = completion_to_message(completion)
    assert (message["stop_reason"], message["stop_sequence"]) == ("end_turn", None)


def test_tool_arguments_that_are_not_an_object_cannot_be_a_message():
    completion = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{broken"}}
                    ],
                }
            }
        ]
    }
    with pytest.raises(ValueError):
        completion_to_message(completion)


# -- property: Anthropic -> OpenAI -> Anthropic ------------------------------------------------
names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def messages(draw: Any) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    for i in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            blocks.append({"type": "text", "text": draw(st.text(min_size=1, max_size=30))})
        else:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{i}",
                    "name": draw(names),
                    "input": draw(st.dictionaries(names, json_values, max_size=3)),
                }
            )
    stop = draw(st.sampled_from(["end_turn", "max_tokens", "tool_use", "refusal", "stop_sequence"]))
    usage = {"input_tokens": draw(st.integers(0, 10**6)), "output_tokens": draw(st.integers(0, 10**6))}
    if draw(st.booleans()):
        usage["cache_read_input_tokens"] = draw(st.integers(1, 10**6))
    return {
        "id": f"msg_{draw(names)}",
        "type": "message",
        "role": "assistant",
        "model": draw(names),
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": draw(st.text(min_size=1, max_size=4)) if stop == "stop_sequence" else None,
        "usage": usage,
    }


def meaning(message: dict[str, Any]) -> dict[str, Any]:
    """What a client takes from a message: its text, its tool calls, why it stopped, usage."""
    blocks = message["content"]
    return {
        "text": "".join(b["text"] for b in blocks if b["type"] == "text"),
        "tools": [(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"],
        "stop": (message["stop_reason"], message["stop_sequence"]),
        "usage": message["usage"],
        "id": message["id"],
        "model": message["model"],
    }


@settings(max_examples=200, deadline=None)
@given(messages())
def test_anthropic_to_openai_to_anthropic_keeps_the_answer(message):
    completion = orjson.loads(orjson.dumps(message_to_completion(message, created=0)))
    if message["stop_reason"] == "stop_sequence":  # the only one OpenAI has no word for
        message = {**message, "stop_reason": "end_turn", "stop_sequence": None}
    assert meaning(completion_to_message(completion)) == meaning(message)
