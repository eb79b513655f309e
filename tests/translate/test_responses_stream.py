"""Chat chunks -> Responses stream events (asgi_llm/translate/responses_stream.py), checked
against golden fixtures and read back by the openai SDK's own stream accumulator."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._models import validate_type
from openai._streaming import SSEDecoder
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent

from asgi_llm.translate import ChatToResponsesStream, chat_to_response
from asgi_llm.translate.responses_stream import encode_event
from tests.translate.responses_fixtures import (
    COMPLETED_AT,
    CREATED_AT,
    RESPONSE_ID,
    counter_ids,
    fixture_names,
    load,
)

REQUEST: dict[str, Any] = {"model": "alias", "input": "hi", "stream": True}
HEAD = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x"}
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **choice: Any) -> dict[str, Any]:
    return {**HEAD, "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish, **choice}]}


def usage_chunk(prompt: int = 3, completion: int = 2) -> dict[str, Any]:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return {**HEAD, "choices": [], "usage": usage}


def call_delta(index: int, arguments: str = "", **first: Any) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": arguments}
    if "name" in first:
        function["name"] = first.pop("name")
    return chunk({"tool_calls": [{"index": index, **first, "function": function}]})


def translator(request: dict[str, Any] = REQUEST) -> ChatToResponsesStream:
    return ChatToResponsesStream(
        request,
        response_id=RESPONSE_ID,
        created_at=CREATED_AT,
        model="deployment-model",
        new_id=counter_ids(),
    )


def run(chunks: list[dict[str, Any]], request: dict[str, Any] = REQUEST, *, end: Any = "finish") -> Any:
    stream = translator(request)
    events = stream.start()
    for piece in chunks:
        events += stream.feed(piece)
    events += stream.finish(completed_at=COMPLETED_AT) if end == "finish" else stream.fail(*end)
    return stream, events


def completion_of(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat completion a client folding these chunks would hold."""
    text, refusal, calls, finish, usage, logprobs = "", "", {}, None, None, []
    model = None
    for piece in chunks:
        model = piece.get("model") or model
        usage = piece.get("usage") or usage
        for choice in piece["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            refusal += delta.get("refusal") or ""
            logprobs += (choice.get("logprobs") or {}).get("content") or []
            for call in delta.get("tool_calls") or ():
                slot = calls.setdefault(call["index"], {"id": None, "name": "", "arguments": ""})
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] += call["function"].get("name") or ""
                slot["arguments"] += call["function"].get("arguments") or ""
            finish = choice["finish_reason"] or finish
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": refusal or None}
    if calls:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for _, c in sorted(calls.items())
        ]
    choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": {"content": logprobs}}
    return {"model": model, "choices": [choice], "usage": usage}


def sdk_state(events: list[dict[str, Any]], tools: Any = None) -> ResponseStreamState[Any]:
    """Our events as the SDK reads them off the wire: framed, decoded by its SSE decoder,
    validated into its event models and accumulated by `client.responses.stream`'s state."""
    from openai._types import omit

    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=tools or omit, text_format=omit)
    wire = b"".join(encode_event(event) for event in events)
    for sse in SSEDecoder().iter_bytes(iter([wire])):
        assert sse.event == sse.json()["type"]
        state.handle_event(validate_type(type_=ResponseStreamEvent, value=sse.json()))  # type: ignore[arg-type]
    return state


def unparsed(value: Any) -> Any:
    """The SDK's parsed snapshot without what it adds itself (`parsed`, `parsed_arguments`)."""
    if isinstance(value, dict):
        return {k: unparsed(v) for k, v in value.items() if k not in ("parsed", "parsed_arguments")}
    if isinstance(value, list):
        return [unparsed(v) for v in value]
    return value


# -- golden fixtures ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", fixture_names("stream"))
def test_golden_stream_fixture(name):
    case = load(name)
    end = "finish" if case["end"] == "finish" else case["end"]["fail"]
    stream, events = run(case["chunks"], case["request"], end=end)
    assert events == case["events"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["response"] == stream.response
    Response.model_validate(stream.response)


@pytest.mark.parametrize("name", fixture_names("stream"))
def test_every_event_is_one_the_sdk_knows_and_the_sdk_accumulates_it(name):
    case = load(name)
    state = sdk_state(case["events"], case["request"].get("tools"))
    final = state._completed_response
    last = case["events"][-1]
    if last["type"] != "response.completed":
        assert final is None  # get_final_response() raises, as for OpenAI's own incomplete/failed
        return
    assert final is not None
    assert unparsed(final.to_dict()) == Response.model_validate(last["response"]).to_dict()


@pytest.mark.parametrize("name", [n for n in fixture_names("stream") if load(n)["end"] == "finish"])
def test_a_streamed_answer_ends_with_the_object_the_whole_answer_gets(name):
    case = load(name)
    stream, _ = run(case["chunks"], case["request"])
    whole = chat_to_response(
        completion_of(case["chunks"]),
        case["request"],
        response_id=RESPONSE_ID,
        created_at=CREATED_AT,
        completed_at=COMPLETED_AT,
        new_id=counter_ids(),
    )
    assert stream.response == whole


# -- through the SDK ------------------------------------------------------------------------------


def test_the_sdk_reads_back_text_and_function_calls():
    tools = [{"type": "function", "name": "weather", "parameters": {"type": "object"}, "strict": True}]
    _, events = run(
        [
            chunk({"role": "assistant", "content": "Let me "}),
            chunk({"content": "check."}),
            call_delta(0, "", id="call_p", type="function", name="weather"),
            call_delta(0, '{"city":'),
            call_delta(0, '"Paris"}'),
            call_delta(1, '{"city":"Oslo"}', id="call_o", type="function", name="weather"),
            chunk(finish="tool_calls"),
            usage_chunk(40, 20),
        ],
        {**REQUEST, "tools": tools},
    )
    final = sdk_state(events, tools)._completed_response
    assert final is not None
    assert final.output_text == "Let me check."
    calls = [
        (o.call_id, o.name, o.arguments, o.parsed_arguments)
        for o in final.output
        if o.type == "function_call"
    ]
    assert calls == [
        ("call_p", "weather", '{"city":"Paris"}', {"city": "Paris"}),
        ("call_o", "weather", '{"city":"Oslo"}', {"city": "Oslo"}),
    ]
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (40, 20)


def test_the_sdk_sees_a_failed_stream_end_with_error_and_response_failed():
    _, events = run([chunk({"content": "partial"})], end=("stream_interrupted", "cut"))
    state = sdk_state(events)
    assert state._completed_response is None
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    failed = Response.model_validate(events[-1]["response"])
    assert failed.status == "failed" and failed.error is not None and failed.error.code == "server_error"
    assert failed.output_text == "partial"


def test_encode_event_frames_an_event_name_and_a_data_line():
    event = {"type": "response.output_text.delta", "delta": "hé", "sequence_number": 3}
    assert encode_event(event) == (
        b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
        b'"delta":"h\xc3\xa9","sequence_number":3}\n\n'
    )


# -- the grammar ----------------------------------------------------------------------------------


def test_start_gives_created_then_in_progress_once():
    stream = translator()
    events = stream.start()
    assert [e["type"] for e in events] == ["response.created", "response.in_progress"]
    assert all(e["response"]["status"] == "in_progress" and e["response"]["output"] == [] for e in events)
    assert events[0]["response"]["model"] == "deployment-model"
    assert stream.started and stream.start() == []
    assert stream.response is None


def test_feed_starts_the_stream_when_start_was_not_called():
    stream = translator()
    events = stream.feed(chunk({"content": "x"}))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_nothing_follows_the_end():
    stream, _ = run([chunk({"content": "x"}, "stop")])
    assert stream.done
    assert stream.feed(chunk({"content": "y"})) == []
    assert stream.finish() == [] and stream.fail("x", "y") == []


def test_the_usage_chunk_and_the_chunk_model_reach_the_final_object():
    stream, events = run([chunk({"content": "x"}, "stop"), usage_chunk(7, 1)])
    assert stream.response["usage"]["total_tokens"] == 8
    assert stream.response["model"] == "gpt-x"


def test_text_after_a_tool_call_opens_a_second_message_and_loses_nothing():
    stream, events = run(
        [
            call_delta(0, "{}", id="c", name="f"),
            chunk({"content": "after"}),
            chunk(finish="stop"),
        ]
    )
    assert [item["type"] for item in stream.response["output"]] == ["function_call", "message"]
    assert Response.model_validate(stream.response).output_text == "after"
    assert sdk_state(events)._completed_response is not None


def test_interleaved_tool_call_arguments_fail_the_stream_rather_than_lose_them():
    stream, events = run(
        [
            call_delta(0, '{"a":', id="c0", name="f"),
            call_delta(1, "{}", id="c1", name="g"),
            call_delta(0, "1}"),
        ],
        end="finish",
    )
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["code"] == "bad_upstream_response"
    assert stream.response["status"] == "failed"


@pytest.mark.parametrize(
    "bad",
    [
        {**HEAD, "choices": [{"index": 0, "delta": "not a dict"}]},
        {**HEAD, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": "f"}]}}]},
        ["not", "a", "chunk"],
    ],
)
def test_a_malformed_chunk_fails_the_stream(bad):
    stream = translator()
    stream.start()
    events = stream.feed(bad)
    assert [e["type"] for e in events] == ["error", "response.failed"]
    assert events[0]["code"] == "bad_upstream_response"


def test_a_chat_error_chunk_fails_the_stream_with_its_code():
    stream = translator()
    stream.start()
    events = stream.feed({"error": {"message": "Too many requests.", "code": "rate_limit_exceeded"}})
    assert events[0] == {
        "type": "error",
        "code": "rate_limit_exceeded",
        "message": "Too many requests.",
        "param": None,
        "sequence_number": 2,
    }
    assert events[1]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "Too many requests."}


def test_fail_before_anything_still_opens_the_stream():
    stream = translator()
    events = stream.fail("stream_interrupted", "gone")
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]
    sdk_state(events)


def test_choices_past_the_first_are_ignored():
    stream, _ = run(
        [{**HEAD, "choices": [{"index": 1, "delta": {"content": "other"}}]}, chunk({"content": "x"}, "stop")]
    )
    assert Response.model_validate(stream.response).output_text == "x"


def test_a_tool_call_without_an_id_gets_one_and_a_late_name_is_kept():
    stream, _ = run([call_delta(0, ""), chunk({"tool_calls": [{"index": 0, "function": {"name": "f"}}]})])
    call = stream.response["output"][0]
    assert (call["call_id"], call["name"]) == ("call_1", "f")


# -- split anywhere: the same final object --------------------------------------------------------


def splits(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in zip(points, points[1:], strict=False) if text[a:b]]


@settings(max_examples=60, deadline=None)
@given(
    st.text(max_size=20),
    st.lists(st.integers(0, 40), max_size=5),
    st.lists(st.text(min_size=0, max_size=6), max_size=3),
    st.sampled_from(["stop", "tool_calls", "length", "content_filter"]),
)
def test_any_split_of_the_same_answer_ends_with_the_same_object(text, cuts, arguments, finish):
    chunks = [chunk({"content": piece}) for piece in splits(text, cuts)]
    for i, args in enumerate(arguments):
        pieces = splits(args, cuts) or [""]
        chunks.append(call_delta(i, pieces[0], id=f"call_{i}", type="function", name=f"f{i}"))
        chunks.extend(call_delta(i, piece) for piece in pieces[1:])
    chunks += [chunk(finish=finish), usage_chunk()]
    stream, events = run(chunks)
    whole = chat_to_response(
        completion_of(chunks),
        REQUEST,
        response_id=RESPONSE_ID,
        created_at=CREATED_AT,
        completed_at=COMPLETED_AT,
        new_id=counter_ids(),
    )
    assert stream.response == whole
    assert events[-1]["type"] == (
        "response.completed" if whole["status"] == "completed" else "response.incomplete"
    )
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    sdk_state(events)
