import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_llm.sse import SSEDecoder, SSEError, event_data

STREAM = b'data: {"a":1}\n\n: keep-alive\n\ndata: {"b":2}\n\ndata: [DONE]\n\n'


def test_whole_events_come_out_of_a_whole_stream():
    events = SSEDecoder().feed(STREAM)
    assert [event_data(e) for e in events] == [b'{"a":1}', None, b'{"b":2}', b"[DONE]"]


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), unique=True, max_size=12))
def test_any_split_gives_the_same_events(cuts):
    cuts = sorted(cuts)
    pieces = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
    decoder = SSEDecoder()
    events = [e for piece in pieces for e in decoder.feed(piece)]
    assert events == SSEDecoder().feed(STREAM)
    assert decoder.pending == b""


def test_crlf_line_endings_even_split_between_cr_and_lf():
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a":1}\r\n\r') == []
    assert [event_data(e) for e in decoder.feed(b"\ndata: x\r\n\r\n")] == [b'{"a":1}', b"x"]


def test_multi_line_data_and_no_space_after_colon():
    assert event_data(b"event: message\ndata:one\ndata: two") == b"one\ntwo"


def test_an_event_past_the_bound_is_refused():
    decoder = SSEDecoder(max_event_bytes=64)
    with pytest.raises(SSEError):
        decoder.feed(b"data: " + b"x" * 100)
