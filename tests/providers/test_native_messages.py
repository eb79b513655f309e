"""A /v1/messages request sent to Anthropic as it came (asgi_llm/providers/native_messages.py):
the body, and the stream relayed as its bytes while usage is read on the way."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_llm import Config
from asgi_llm.context import LLMContext, MessagesCall, Usage
from asgi_llm.providers.native_messages import NativeMessagesStream, native_body, read_native
from asgi_llm.sse import SSEError
from asgi_llm.translate.stream import UpstreamErrorEvent
from tests.fakes.anthropic import message_events

CONFIG = Config.from_dict(
    {
        "models": [
            {
                "name": "claude",
                "deployments": [
                    {
                        "id": "c",
                        "provider": "anthropic",
                        "model": "claude-up",
                        "base_url": "http://127.0.0.1:9/v1",
                    }
                ],
            }
        ]
    }
)
DEPLOYMENT = CONFIG.catalog.deployments["c"]
USAGE = {
    "input_tokens": 12,
    "cache_read_input_tokens": 300,
    "cache_creation_input_tokens": 40,
    "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 30},
    "output_tokens": 25,
}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-up",
    "content": [
        {"type": "thinking", "thinking": "Hmm.", "signature": "c2ln"},
        {"type": "redacted_thinking", "data": "cmVk"},
        {"type": "text", "text": "It is sunny.", "citations": [{"type": "char_location", "cited_text": "x"}]},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": USAGE,
}
EVENTS = message_events(MESSAGE, chunks=3, json_pieces=2)
STREAM = b"".join(EVENTS)


def context(**fields) -> LLMContext:
    ctx = LLMContext(request_id="r", config=CONFIG, endpoint="chat", stream=True)
    for name, value in fields.items():
        setattr(ctx, name, value)
    return ctx


def feed_in_pieces(adapter: NativeMessagesStream, data: bytes, cuts: list[int]) -> bytes:
    out, last = [], 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out.append(adapter.feed(data[last:cut]))
        last = cut
    return b"".join(out)


def test_the_body_goes_as_it_came_but_for_the_model():
    request = {
        "model": "claude",
        "max_tokens": 10,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
                ],
            }
        ],
    }
    body = orjson.loads(native_body(MessagesCall(request, {}), DEPLOYMENT))
    assert body == {**request, "model": "claude-up"}
    assert list(body) == list(request)  # the client's order, too


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 1 << 14), max_size=10))
def test_the_stream_is_relayed_as_its_bytes_however_it_arrives(cuts):
    ctx = context()
    adapter = NativeMessagesStream(ctx)
    assert feed_in_pieces(adapter, STREAM, cuts) == STREAM
    assert adapter.done
    assert ctx.usage == Usage(352, 25, 300, 0, 40, 30)
    assert ctx.stream_start_usage == Usage(352, 1, 300, 0, 40, 30)
    assert ctx.finish_reason == "tool_calls"
    # Content deltas: 3 text, 1 citation, 2 tool input, 1 thinking (its signature is not one).
    assert ctx.streamed_chunks == 7


def test_nothing_goes_out_before_the_first_content_so_an_early_error_fails_over():
    adapter = NativeMessagesStream(context())
    assert adapter.feed(b"".join(EVENTS[:3])) == b""  # message_start, block start, ping
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"x"}}\n\n'
    with pytest.raises(UpstreamErrorEvent):
        adapter.feed(error)
    adapter = NativeMessagesStream(context())
    adapter.feed(b"".join(EVENTS[:3]))
    assert adapter.feed(EVENTS[3]) == b"".join(EVENTS[:4])  # held events, then the first delta


def test_an_error_event_after_the_first_content_is_relayed_and_fails_the_stream():
    ctx = context()
    adapter = NativeMessagesStream(ctx)
    adapter.feed(b"".join(EVENTS[:5]))
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"x"}}\n\n'
    assert adapter.feed(error) == error
    assert adapter.done and ctx.stream_failure == "overloaded_error"
    assert ctx.usage is None  # never said: the delivered rule will charge it


def test_a_partial_event_waits_for_its_end():
    adapter = NativeMessagesStream(context())
    adapter.feed(b"".join(EVENTS[:4]))
    half = len(EVENTS[4]) // 2
    assert adapter.feed(EVENTS[4][:half]) == b""
    assert adapter.feed(EVENTS[4][half:]) == EVENTS[4]


def test_a_start_that_says_zero_is_never_the_final_usage():
    ctx = context()
    events = message_events(MESSAGE, start_usage_zero=True)
    adapter = NativeMessagesStream(ctx)
    adapter.feed(b"".join(events[:-2]))  # up to message_delta, not included
    assert ctx.usage is None and ctx.stream_start_usage == Usage(0, 0)
    adapter.feed(b"".join(events[-2:]))
    assert ctx.usage == Usage(352, 25, 300, 0, 40, 30)


def test_an_older_message_delta_with_only_output_keeps_the_input_side():
    ctx = context()
    adapter = NativeMessagesStream(ctx)
    events = message_events(MESSAGE)
    adapter.feed(b"".join(events[:-2]))
    adapter.feed(
        b'event: message_delta\ndata: {"type":"message_delta","delta":{},"usage":{"output_tokens":9}}\n\n'
    )
    assert ctx.usage == Usage(352, 9, 300, 0, 40, 30)


def test_crlf_streams_and_events_without_their_name_line():
    ctx = context()
    adapter = NativeMessagesStream(ctx)
    crlf = STREAM.replace(b"\n", b"\r\n")
    assert feed_in_pieces(adapter, crlf, [7, 300, 301]) == crlf
    assert ctx.usage is not None and ctx.usage.completion_tokens == 25
    ctx = context()
    bare = b"".join(e.split(b"\n", 1)[1] for e in EVENTS)  # data lines only
    assert NativeMessagesStream(ctx).feed(bare) == bare
    assert ctx.usage is not None and ctx.usage.completion_tokens == 25


def test_a_malformed_event_is_an_sse_error():
    adapter = NativeMessagesStream(context())
    with pytest.raises(SSEError):
        adapter.feed(b"event: message_start\ndata: {not json\n\n")


def test_a_whole_message_and_a_count_are_relayed_as_their_bytes():
    ctx = context(stream=False)
    body = orjson.dumps(MESSAGE)
    assert read_native(ctx, DEPLOYMENT, body) is body
    assert ctx.usage == Usage(352, 25, 300, 0, 40, 30) and ctx.finish_reason == "tool_calls"
    count = context(endpoint="count_tokens", stream=False)
    assert read_native(count, DEPLOYMENT, b'{"input_tokens":42}') == b'{"input_tokens":42}'
    assert count.usage is None
    with pytest.raises(Exception, match="no input_tokens"):
        read_native(count, DEPLOYMENT, b'{"tokens":42}')
    with pytest.raises(Exception, match="not a message"):
        read_native(ctx, DEPLOYMENT, b'{"type":"error"}')
