"""Fuzzing the parsers a client or an upstream feeds: no input raises anything but our own
errors, and none hangs (hypothesis; THREATS H4-H7, U9)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_llm.config.default import default_config
from asgi_llm.context import LLMContext
from asgi_llm.errors import ProxyError
from asgi_llm.providers.openai import OpenAIStream
from asgi_llm.request import parse_json, validate
from asgi_llm.sse import SSEDecoder, SSEError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
request_like = st.fixed_dictionaries(
    {},
    optional={
        "model": json_values | st.sampled_from(["mock-1", "", " ", "x" * 300]),
        "messages": json_values
        | st.lists(st.fixed_dictionaries({"role": json_values, "content": json_values}), max_size=4),
        "stream": json_values,
        "stream_options": json_values,
        "n": json_values,
        "max_tokens": json_values,
        "tools": json_values,
        "prompt": json_values,
        "input": json_values,
        "response_format": json_values,
        "metadata": json_values,
    },
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_parse_json_on_any_bytes(data):
    try:
        payload = parse_json(data)
    except ProxyError as exc:
        assert exc.status == 400
        return
    assert isinstance(payload, dict)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["chat", "completions", "embeddings"]), request_like)
def test_validate_on_any_object(endpoint, payload):
    body = json.dumps(payload).encode()  # any JSON text, big integers included
    try:
        validate(endpoint, parse_json(body))
    except ProxyError as exc:
        assert exc.status == 400 and exc.code


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=80), max_size=12))
def test_sse_stream_on_any_chunks(chunks):
    ctx = LLMContext(request_id="r", config=default_config(environ={}), endpoint="chat")
    stream = OpenAIStream(ctx)
    try:
        for chunk in chunks:
            out = stream.feed(chunk)
            assert isinstance(out, bytes)
    except SSEError:
        pass


@given(
    st.lists(st.sampled_from([b"data: {}", b"\n", b"\r\n", b"\r", b":c", b"data:[DONE]", b"x"]), max_size=40)
)
def test_sse_decoder_buffer_stays_bounded(pieces):
    decoder = SSEDecoder(max_event_bytes=64)
    try:
        for piece in pieces:
            decoder.feed(piece)
            assert len(decoder.pending) <= 64 + 2
    except SSEError:
        pass
