"""Streams, both ways (asgi_llm/translate/stream.py), split anywhere."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_llm.sse import SSEDecoder, SSEError, event_data
from asgi_llm.translate import (
    ChatToMessagesStream,
    MessagesToChatStream,
    UpstreamErrorEvent,
    message_to_completion,
)
from tests.fakes.anthropic import message_events
from tests.translate.test_response import meaning, messages

MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "text", "text": "Checking the weather."},
        {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_b", "name": "time", "input": {}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 11, "output_tokens": 22},
}


def feed_in_pieces(translator: Any, data: bytes, cuts: list[int]) -> bytes:
    out, last = [], 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}) + [len(data)]:
        out.append(translator.feed(data[last:cut]))
        last = cut
    return b"".join(out)


def chunks_of(sse: bytes) -> list[Any]:
    decoder = SSEDecoder()
    return [
        data if data == b"[DONE]" else orjson.loads(data)
        for data in (event_data(e) for e in decoder.feed(sse))
        if data is not None
    ]


def fold_chunks(chunks: list[Any]) -> dict[str, Any]:
    """OpenAI chunks -> the completion's content, tool calls, finish and usage."""
    assert chunks[-1] == b"[DONE]"
    text, reasoning, thinking, calls, finish, usage, roles = "", "", [], {}, None, None, 0
    for chunk in chunks[:-1]:
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            roles += "role" in delta
            text += delta.get("content") or ""
            reasoning += delta.get("reasoning_content") or ""
            thinking += delta.get("thinking_blocks") or []
            for call in delta.get("tool_calls") or ():
                slot = calls.setdefault(call["index"], {"id": None, "name": "", "arguments": ""})
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] += call.get("function", {}).get("name") or ""
                slot["arguments"] += call.get("function", {}).get("arguments") or ""
            finish = choice["finish_reason"] or finish
    assert roles == 1, "the role goes out exactly once"
    return {
        "content": text or None,
        "reasoning": reasoning or None,
        "thinking_blocks": thinking or None,
        "finish": finish,
        "usage": usage,
        "tools": [
            (c["id"], c["name"], orjson.loads(c["arguments"] or "{}")) for _, c in sorted(calls.items())
        ],
    }


def completion_meaning(completion: dict[str, Any]) -> dict[str, Any]:
    message = completion["choices"][0]["message"]
    return {
        "content": message["content"],
        "reasoning": message.get("reasoning_content"),
        "thinking_blocks": message.get("thinking_blocks"),
        "finish": completion["choices"][0]["finish_reason"],
        "usage": completion.get("usage"),
        "tools": [
            (c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"]))
            for c in message.get("tool_calls") or ()
        ],
    }


def fold_events(sse: bytes) -> dict[str, Any]:
    """Anthropic events -> the message, checking the event grammar on the way."""
    message: dict[str, Any] | None = None
    partial: dict[int, str] = {}
    open_blocks: set[int] = set()
    for raw in SSEDecoder().feed(sse):
        name_line, data_line = raw.split(b"\n")
        name, event = name_line.removeprefix(b"event: ").decode(), orjson.loads(data_line[6:])
        assert event["type"] == name
        assert name == "message_start" or message is not None
        if name == "message_start":
            assert message is None
            message = event["message"]
        elif name == "content_block_start":
            assert event["index"] == len(message["content"])
            message["content"].append(event["content_block"])
            open_blocks.add(event["index"])
        elif name == "content_block_delta":
            block, delta = message["content"][event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            else:
                partial[event["index"]] = partial.get(event["index"], "") + delta["partial_json"]
        elif name == "content_block_stop":
            open_blocks.remove(event["index"])
            if event["index"] in partial:
                message["content"][event["index"]]["input"] = orjson.loads(partial[event["index"]])
        elif name == "message_delta":
            assert not open_blocks
            message.update(event["delta"])
            message["usage"].update(event["usage"])
        elif name == "message_stop":
            message["done"] = True
        else:
            message["error"] = event["error"]
    assert message is not None
    return message


# -- Anthropic -> OpenAI -----------------------------------------------------------------------
def test_events_become_chunks_with_tool_call_argument_deltas():
    translator = MessagesToChatStream(created=5, include_usage=True)
    chunks = chunks_of(translator.feed(b"".join(message_events(MESSAGE, chunks=3, json_pieces=4))))
    assert translator.done and translator.finish_reason == "tool_calls"
    assert translator.usage == {"input_tokens": 11, "output_tokens": 22}
    assert translator.start_usage == {"input_tokens": 11, "output_tokens": 1}
    deltas = [c["choices"][0]["delta"] for c in chunks[:3]]
    assert deltas == [
        {"role": "assistant", "reasoning_content": "hmm"},
        {"thinking_blocks": [{"type": "thinking", "thinking": "hmm", "signature": "s"}]},
        {"content": "Checkin"},
    ]
    starts = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks[:-2]
        if "id" in (c["choices"][0]["delta"].get("tool_calls") or [{}])[0]
    ]
    assert starts == [
        {"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "weather", "arguments": ""}},
        {"index": 1, "id": "toolu_b", "type": "function", "function": {"name": "time", "arguments": ""}},
    ]
    assert chunks[-2] == {
        "id": "msg_1",
        "object": "chat.completion.chunk",
        "created": 5,
        "model": "claude-x",
        "choices": [],
        "usage": {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33},
    }
    assert fold_chunks(chunks)["tools"] == [("toolu_a", "weather", {"city": "Oslo"}), ("toolu_b", "time", {})]
    assert translator.chunks == len(chunks) - 2  # the usage chunk and [DONE] are not content


def test_no_usage_chunk_unless_asked_but_usage_is_still_known():
    translator = MessagesToChatStream(created=5, include_usage=False)
    chunks = chunks_of(translator.feed(b"".join(message_events(MESSAGE))))
    assert all(c == b"[DONE]" or c["choices"] for c in chunks)
    assert translator.usage == {"input_tokens": 11, "output_tokens": 22}


def test_nothing_goes_out_before_the_first_token():
    translator = MessagesToChatStream(created=5, include_usage=False)
    events = message_events({**MESSAGE, "content": [{"type": "text", "text": "Hi"}]})
    assert translator.feed(b"".join(events[:3])) == b""  # message_start, block start, ping
    assert b'"role":"assistant","content":"H' in translator.feed(events[3])


def test_an_error_event_raises_so_the_stream_ends_without_done():
    translator = MessagesToChatStream(created=5, include_usage=False)
    events = message_events(MESSAGE)
    translator.feed(b"".join(events[:6]))
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"x"}}\n\n'
    with pytest.raises(UpstreamErrorEvent, match="overloaded_error"):
        translator.feed(error)
    assert not translator.done


def test_an_event_that_is_not_json_is_an_sse_error():
    with pytest.raises(ValueError):
        MessagesToChatStream(created=5, include_usage=False).feed(b"event: x\ndata: {nope\n\n")


# -- OpenAI -> Anthropic -----------------------------------------------------------------------
def test_a_replayed_answer_in_one_chunk_becomes_well_formed_events():
    chunk = {
        "id": "c1",
        "model": "gpt",
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "delta": {
                    "role": "assistant",
                    "content": "Sure.",
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a":1}'},
                        }
                    ],
                },
            }
        ],
    }
    finish = {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
    usage = {"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    sse = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in (chunk, finish, usage))
    sse += b"data: [DONE]\n\n"
    message = fold_events(ChatToMessagesStream(input_tokens=2).feed(sse))
    assert message["content"] == [
        {"type": "text", "text": "Sure."},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
    ]
    assert message["stop_reason"] == "tool_use" and message["done"]
    assert message["usage"] == {"input_tokens": 3, "output_tokens": 4}


def test_the_proxys_error_event_becomes_an_anthropic_error_event():
    translator = ChatToMessagesStream()
    sse = (
        b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
        b'data: {"error":{"message":"The upstream stream was interrupted.",'
        b'"code":"stream_interrupted"}}\n\n'
    )
    message = fold_events(translator.feed(sse))
    assert message["error"] == {"type": "api_error", "message": "The upstream stream was interrupted."}
    assert "done" not in message and translator.done


# -- properties --------------------------------------------------------------------------------
cuts = st.lists(st.integers(0, 1 << 16), max_size=12)


@settings(max_examples=100, deadline=None)
@given(messages(), cuts, st.integers(1, 4), st.integers(1, 4), st.booleans())
def test_anthropic_stream_split_anywhere_gives_the_same_chunks(message, cut, n, m, include_usage):
    data = b"".join(message_events(message, chunks=n, json_pieces=m))
    whole = MessagesToChatStream(created=1, include_usage=include_usage).feed(data)
    pieces = feed_in_pieces(MessagesToChatStream(created=1, include_usage=include_usage), data, cut)
    assert pieces == whole
    expected = completion_meaning(message_to_completion(message, created=1))
    if not include_usage:
        expected["usage"] = None
    assert fold_chunks(chunks_of(whole)) == expected


@settings(max_examples=100, deadline=None)
@given(messages(), cuts, cuts)
def test_anthropic_to_openai_to_anthropic_stream_keeps_the_answer(message, cut1, cut2):
    upstream = MessagesToChatStream(created=1, include_usage=True)
    openai_sse = feed_in_pieces(upstream, b"".join(message_events(message)), cut1)
    whole = ChatToMessagesStream().feed(openai_sse)
    split = feed_in_pieces(ChatToMessagesStream(), openai_sse, cut2)
    assert split == whole
    folded = fold_events(whole)
    assert folded["done"]
    if message["stop_reason"] == "stop_sequence":  # the only one OpenAI has no word for
        message = {**message, "stop_reason": "end_turn", "stop_sequence": None}
    assert meaning(folded) == meaning(message)  # usage included, cache reads told apart


junk = st.recursive(
    st.none() | st.booleans() | st.integers(-9, 9) | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "index",
                    "delta",
                    "text",
                    "partial_json",
                    "message",
                    "usage",
                    "content_block",
                    "choices",
                    "tool_calls",
                    "function",
                    "arguments",
                    "content",
                    "finish_reason",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(
                    [
                        "message_start",
                        "content_block_start",
                        "content_block_delta",
                        "message_delta",
                        "message_stop",
                        "error",
                        "ping",
                    ]
                )
            },
            optional={
                name: junk
                for name in (
                    "index",
                    "delta",
                    "message",
                    "usage",
                    "content_block",
                    "choices",
                    "id",
                    "model",
                    "error",
                )
            },
        ),
        max_size=5,
    )
)
def test_malformed_events_are_sse_errors_and_nothing_else(events):
    data = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    for translator in (MessagesToChatStream(created=1, include_usage=True), ChatToMessagesStream()):
        try:
            translator.feed(data)
        except SSEError:
            pass
