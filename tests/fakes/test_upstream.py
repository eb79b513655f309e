"""Tests of the fake upstream itself, so that proxy tests can trust it."""

from __future__ import annotations

import base64
import json
import re
import struct
import threading
import time
from collections.abc import Iterator
from typing import Literal

import aiohttp
import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from openai.types.responses import FunctionToolParam, ResponseCompletedEvent, ResponseCreatedEvent
from pydantic import BaseModel

from .upstream import Behavior, FakeUpstream

CHAT: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hi you"},
]


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream("fake") as server:
        yield server


@pytest.fixture
def client(up: FakeUpstream) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=up.base_url, api_key="x", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(trust_env=False, timeout=5.0) as c:
        yield c


def test_chat_non_stream(up: FakeUpstream, client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="gpt-x", messages=CHAT)
    assert (r.object, r.model, r.id) == ("chat.completion", "gpt-x", "chatcmpl-fake-1")
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == "tok0 tok1 tok2 "
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (4, 3)
    assert r.usage.total_tokens == 7
    [rec] = up.requests
    assert (rec.method, rec.path, rec.query) == ("POST", "/v1/chat/completions", "")
    assert rec.headers["authorization"] == "Bearer x"
    assert rec.json["model"] == "gpt-x"
    assert rec.json["messages"] == CHAT
    assert rec.finished_at is not None and rec.finished_at >= rec.received_at
    assert rec.disconnected_at is None


def test_chat_stream_with_usage(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.script(Behavior(chunks=4))
    chunks = list(
        client.chat.completions.create(
            model="m",
            messages=CHAT,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "tok0 tok1 tok2 tok3 "
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    assert chunks[-1].usage.prompt_tokens == 4
    assert all(c.object == "chat.completion.chunk" for c in chunks)


def test_chat_stream_without_usage(up: FakeUpstream, http: httpx2.Client) -> None:
    body = {"model": "m", "messages": CHAT, "stream": True}
    r = http.post(f"{up.base_url}/chat/completions", json=body)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream"
    events = r.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert len(events) == 3 + 1 + 2  # content chunks, final chunk, [DONE], ""
    assert '"usage"' not in r.text


def test_usage_false_omits_usage_chunk(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.script(Behavior(usage=False))
    stream = client.chat.completions.create(
        model="m",
        messages=CHAT,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert len(chunks) == 4
    assert all(c.choices and c.usage is None for c in chunks)


def test_stream_chunks_are_flushed_one_by_one(up: FakeUpstream, http: httpx2.Client) -> None:
    up.script(Behavior(chunks=3, chunk_delay_s=0.2))
    body = {"model": "m", "messages": CHAT, "stream": True}
    arrivals = []
    with http.stream("POST", f"{up.base_url}/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                arrivals.append(time.monotonic())
    assert arrivals[1] - arrivals[0] >= 0.15
    assert arrivals[2] - arrivals[0] >= 0.35


def test_scripted_errors_then_default(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.script(
        Behavior(status=429, headers={"Retry-After": "2"}, error_message="slow down"),
        Behavior(status=503),
    )
    with pytest.raises(openai.RateLimitError) as rate_limited:
        client.chat.completions.create(model="m", messages=CHAT)
    assert rate_limited.value.response.headers["retry-after"] == "2"
    assert rate_limited.value.body == {
        "message": "slow down",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    with pytest.raises(openai.InternalServerError) as unavailable:
        client.embeddings.create(model="e", input="x")
    assert unavailable.value.status_code == 503
    up.default = Behavior(chunks=1)
    r = client.chat.completions.create(model="m", messages=CHAT)
    assert r.choices[0].message.content == "tok0 "


def test_raw_body_override(up: FakeUpstream, http: httpx2.Client) -> None:
    html = b"<html><body>502 Bad Gateway</body></html>"
    up.script(Behavior(status=502, body=html, content_type="text/html"))
    r = http.post(f"{up.base_url}/chat/completions", json={"model": "m"})
    assert (r.status_code, r.content) == (502, html)
    assert r.headers["content-type"] == "text/html"
    up.script(Behavior(body=b'{"choices": [', headers={"set-cookie": "a=b"}))
    r = http.post(f"{up.base_url}/completions", json={"model": "m"})
    assert (r.status_code, r.content) == (200, b'{"choices": [')
    assert r.headers["set-cookie"] == "a=b"


def test_delay_and_client_timeout_records_disconnect(up: FakeUpstream) -> None:
    up.script(Behavior(delay_s=5))
    with (
        httpx2.Client(trust_env=False, timeout=0.3) as http,
        pytest.raises(httpx2.ReadTimeout),
    ):
        http.post(f"{up.base_url}/chat/completions", json={"model": "m"})
    gave_up = time.monotonic()
    rec = up.wait_for_disconnect(timeout=2)
    assert rec is up.requests[0]
    assert rec.disconnected_at is not None
    assert rec.disconnected_at - gave_up < 1.0
    assert rec.disconnected_at - rec.received_at < 1.3
    assert rec.finished_at is None


def test_wait_for_disconnect_times_out(up: FakeUpstream, http: httpx2.Client) -> None:
    http.post(f"{up.base_url}/chat/completions", json={"model": "m"})
    started = time.monotonic()
    assert up.wait_for_disconnect(timeout=0.2) is None
    assert time.monotonic() - started >= 0.2


def test_client_leaving_mid_stream_is_recorded(up: FakeUpstream, http: httpx2.Client) -> None:
    up.script(Behavior(chunks=100, chunk_delay_s=0.05))
    body = {"model": "m", "messages": CHAT, "stream": True}
    with http.stream("POST", f"{up.base_url}/chat/completions", json=body) as r:
        next(r.iter_lines())
    rec = up.wait_for_disconnect(timeout=2)
    assert rec is not None and rec.finished_at is None


def test_cut_after_makes_sdk_stream_raise(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.script(Behavior(chunks=5, cut_after=2))
    seen = []
    with pytest.raises(openai.APIConnectionError):
        stream = client.chat.completions.create(
            model="m",
            messages=CHAT,
            stream=True,
        )
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content)
    assert seen == ["tok0 ", "tok1 "]
    [rec] = up.requests
    assert rec.finished_at is not None and rec.disconnected_at is None


async def test_cut_after_is_a_protocol_error_for_async_clients(
    up: FakeUpstream,
) -> None:
    body = {"model": "m", "prompt": "say", "stream": True}
    up.script(Behavior(cut_after=1), Behavior(cut_after=0), Behavior(cut_after=3))
    async with httpx2.AsyncClient(trust_env=False, timeout=5.0) as http:
        with pytest.raises(httpx2.RemoteProtocolError):
            async with http.stream("POST", f"{up.base_url}/completions", json=body) as r:
                async for _ in r.aiter_bytes():
                    pass
        with pytest.raises(httpx2.RemoteProtocolError):  # non-stream: half a body
            await http.post(f"{up.base_url}/completions", json={"prompt": "x"})
    async with aiohttp.ClientSession() as session:
        url = f"{up.base_url}/completions"
        with pytest.raises(aiohttp.ClientPayloadError):
            async with session.post(url, json=body) as resp:
                await resp.read()


async def test_async_wait_for_disconnect(up: FakeUpstream) -> None:
    up.script(Behavior(delay_s=5))
    async with httpx2.AsyncClient(trust_env=False, timeout=0.3) as http:
        with pytest.raises(httpx2.ReadTimeout):
            await http.post(f"{up.base_url}/embeddings", json={"input": "x"})
    rec = await up.wait_for_disconnect_async(timeout=2)
    assert rec is not None and rec.path == "/v1/embeddings"


def test_azure_path_and_query_recorded(up: FakeUpstream) -> None:
    with openai.AzureOpenAI(
        azure_endpoint=up.root_url,
        api_key="az-key",
        api_version="2024-10-21",
        max_retries=0,
    ) as azure:
        r = azure.chat.completions.create(model="my-deploy", messages=CHAT)
        e = azure.embeddings.create(model="emb-deploy", input=["a", "b"])
    assert r.choices[0].message.content == "tok0 tok1 tok2 "
    assert len(e.data) == 2
    chat, emb = up.requests
    assert chat.path == "/openai/deployments/my-deploy/chat/completions"
    assert chat.query == "api-version=2024-10-21"
    assert chat.headers["api-key"] == "az-key"
    assert emb.path == "/openai/deployments/emb-deploy/embeddings"


def test_embeddings(up: FakeUpstream, client: openai.OpenAI, http: httpx2.Client) -> None:
    e = client.embeddings.create(model="emb", input=["one two", "three"])  # base64 wire
    assert up.requests[0].json["encoding_format"] == "base64"
    assert [d.index for d in e.data] == [0, 1]
    assert all(len(d.embedding) == 8 for d in e.data)
    assert all(-1.0 <= x <= 1.0 for d in e.data for x in d.embedding)
    assert e.data[0].embedding != e.data[1].embedding
    assert e.usage.prompt_tokens == 3
    body = {"model": "emb", "input": "three", "encoding_format": "float"}
    floats = http.post(f"{up.base_url}/embeddings", json=body).json()
    [vector] = [d["embedding"] for d in floats["data"]]
    packed = struct.pack("<8f", *e.data[1].embedding)
    assert packed == struct.pack("<8f", *vector)  # same input, same vector
    base64_body = {**body, "encoding_format": "base64"}
    raw = http.post(f"{up.base_url}/embeddings", json=base64_body).json()
    assert base64.b64decode(raw["data"][0]["embedding"]) == packed


def test_text_completions(up: FakeUpstream, client: openai.OpenAI) -> None:
    r = client.completions.create(model="davinci", prompt="once upon a time")
    assert (r.object, r.model) == ("text_completion", "davinci")
    assert r.choices[0].text == "tok0 tok1 tok2 "
    assert r.usage is not None and r.usage.prompt_tokens == 4
    chunks = list(
        client.completions.create(
            model="davinci",
            prompt="x",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "tok0 tok1 tok2 "
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def test_models_and_404_do_not_consume_script(
    up: FakeUpstream, client: openai.OpenAI, http: httpx2.Client
) -> None:
    up.script(Behavior(chunks=1))
    assert [m.id for m in client.models.list()] == up.models
    r = http.get(f"{up.root_url}/v1/nope?x=1")
    assert r.status_code == 404
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert r.json()["error"]["message"] == "Invalid URL (GET /v1/nope)"
    assert up.requests[1].query == "x=1"
    assert http.get(f"{up.base_url}/chat/completions").status_code == 404
    r = http.post(f"{up.base_url}/chat/completions", json={"messages": []})
    assert r.json()["choices"][0]["message"]["content"] == "tok0 "
    r = http.post(f"{up.base_url}/chat/completions", content=b"{not json")
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_headers_keep_alive_and_reset(up: FakeUpstream, http: httpx2.Client) -> None:
    headers = [("X-Dup", "a"), ("x-dup", "b")]
    http.post(f"{up.base_url}/chat/completions?a=1", json={}, headers=headers)
    http.post(f"{up.base_url}/chat/completions", json={})
    first, second = up.requests
    assert first.headers["x-dup"] == "a, b"
    assert first.query == "a=1"
    assert first.client is not None and first.client == second.client  # one conn.
    up.script(Behavior(status=500))
    up.reset()
    assert up.requests == []
    assert http.post(f"{up.base_url}/chat/completions", json={}).status_code == 200


def test_two_upstreams_and_prompt_stop_with_a_stalled_request() -> None:
    with FakeUpstream("a") as a, FakeUpstream("b") as b:
        assert a.base_url != b.base_url
        b.default = Behavior(delay_s=30)
        outcome: list[object] = []

        def call() -> None:
            with httpx2.Client(trust_env=False, timeout=10) as http:
                try:
                    outcome.append(http.post(f"{b.base_url}/completions", json={}))
                except httpx2.HTTPError as exc:
                    outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        deadline = time.monotonic() + 5
        while not b.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        b.stop()
        assert time.monotonic() - started < 3
        caller.join(timeout=5)
        assert outcome and not isinstance(outcome[0], httpx2.ReadTimeout)
        b.stop()  # idempotent
        with httpx2.Client(trust_env=False) as http:
            r = http.post(f"{a.base_url}/chat/completions", json={})
        assert r.headers["x-fake-upstream"] == "a"


# -- the Responses API -----------------------------------------------------------------
WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": None,
}
TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * 3,
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


class Day(BaseModel):
    name: str
    high: float
    rain: bool


class Forecast(BaseModel):  # nested: its JSON schema reaches Day through a $ref
    unit: Literal["c", "f"]
    days: list[Day]


def frames(text: str) -> list[tuple[str, dict]]:
    """(event name, data) of each SSE frame, checking OpenAI's framing on the way."""
    found = []
    for block in text.split("\n\n")[:-1]:
        event, data = block.split("\n")
        assert event.startswith("event: ") and data.startswith("data: ")
        found.append((event[len("event: ") :], json.loads(data[len("data: ") :])))
    assert text.endswith("\n\n")
    return found


def test_responses_create_with_the_sdk(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.script(Behavior(cached_tokens=2, reasoning_tokens=5))
    r = client.responses.create(model="gpt-x", input="hello there you", instructions="be brief")
    assert re.fullmatch(r"resp_[0-9a-f]{48}", r.id)
    assert (r.object, r.status, r.model, r.instructions) == ("response", "completed", "gpt-x", "be brief")
    assert r.output_text == "tok0 tok1 tok2 "
    [message] = r.output
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert r.usage is not None
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (5, 8, 13)
    assert r.usage.input_tokens_details.cached_tokens == 2
    assert r.usage.output_tokens_details.reasoning_tokens == 5
    assert r.previous_response_id is None
    [rec] = up.requests
    assert (rec.method, rec.path) == ("POST", "/v1/responses")
    assert rec.headers["authorization"] == "Bearer x"
    assert rec.json == {"model": "gpt-x", "input": "hello there you", "instructions": "be brief"}
    assert up.responses[r.id]["output"][0]["content"][0]["text"] == r.output_text


def test_responses_stream_with_the_sdk(up: FakeUpstream, client: openai.OpenAI) -> None:
    with client.responses.stream(model="m", input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [e.type for e in events] == TEXT_EVENTS
    assert [e.sequence_number for e in events] == list(range(len(TEXT_EVENTS)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == ["tok0 ", "tok1 ", "tok2 "]
    assert final.output_text == "tok0 tok1 tok2 " and final.status == "completed"
    created = events[0]
    assert isinstance(created, ResponseCreatedEvent)
    assert created.response.id == final.id and created.response.status == "in_progress"
    assert final.usage is not None and final.usage.output_tokens == 3
    raw = list(client.responses.create(model="m", input="hi", stream=True))
    completed = raw[-1]
    assert isinstance(completed, ResponseCompletedEvent)
    assert completed.response.output_text == "tok0 tok1 tok2 "


def test_responses_stream_is_framed_as_openai_frames_it(up: FakeUpstream, http: httpx2.Client) -> None:
    body = {"model": "m", "input": "hi", "stream": True}
    r = http.post(f"{up.base_url}/responses", json=body, headers={"authorization": "Bearer x"})
    assert r.headers["content-type"] == "text/event-stream"
    found = frames(r.text)
    assert [name for name, _ in found] == TEXT_EVENTS
    assert all(data["type"] == name for name, data in found)
    assert [data["sequence_number"] for _, data in found] == list(range(len(found)))
    assert all("obfuscation" in data for name, data in found if name.endswith(".delta"))
    quiet = {**body, "stream_options": {"include_obfuscation": False}}
    r = http.post(f"{up.base_url}/responses", json=quiet, headers={"authorization": "Bearer x"})
    assert not any("obfuscation" in data for _, data in frames(r.text))


def test_function_calling_over_two_turns(up: FakeUpstream, client: openai.OpenAI) -> None:
    first = client.responses.create(model="m", input="What is the weather in Paris?", tools=[WEATHER])
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "fake"}
    assert first.output_text == ""
    second = client.responses.create(
        model="m",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 21}'}],
        tools=[WEATHER],
    )
    assert second.previous_response_id == first.id
    assert second.output_text == "tok0 tok1 tok2 "
    with client.responses.stream(model="m", input="weather in Oslo?", tools=[WEATHER]) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert kinds.count("response.function_call_arguments.delta") == 3
    [streamed] = final.output
    assert streamed.type == "function_call" and json.loads(streamed.arguments) == {"city": "fake"}


def test_tool_choice_decides_whether_a_function_is_called(client: openai.OpenAI) -> None:
    calm = client.responses.create(model="m", input="the weather?", tools=[WEATHER], tool_choice="none")
    assert calm.output[0].type == "message"
    forced = client.responses.create(model="m", input="hello", tools=[WEATHER], tool_choice="required")
    assert forced.output[0].type == "function_call"
    named = client.responses.create(
        model="m", input="hello", tools=[WEATHER], tool_choice={"type": "function", "name": "get_weather"}
    )
    assert named.output[0].type == "function_call"
    plain = client.responses.create(model="m", input="hello", tools=[WEATHER])
    assert plain.output[0].type == "message"


def test_json_schema_format_answers_json_the_sdk_parses(client: openai.OpenAI) -> None:
    parsed = client.responses.parse(model="m", input="the forecast", text_format=Forecast)
    assert parsed.output_parsed == Forecast(unit="c", days=[Day(name="fake", high=1.5, rain=True)])
    with client.responses.stream(model="m", input="the forecast", text_format=Forecast) as stream:
        final = stream.get_final_response()
    assert final.output_parsed == parsed.output_parsed
    plain = client.responses.create(model="m", input="json please", text={"format": {"type": "json_object"}})
    assert json.loads(plain.output_text) == {"answer": "tok0"}


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"model": "m", "messages": CHAT}, 400, "unknown_parameter", "messages"),
        ({"model": "m", "input": "x", "max_tokens": 5}, 400, "unknown_parameter", "max_tokens"),
        (
            {"model": "m", "input": "x", "response_format": {"type": "text"}},
            400,
            "unknown_parameter",
            "response_format",
        ),
        ({"input": "x"}, 400, "missing_required_parameter", "model"),
        ({"model": "m"}, 400, "missing_required_parameter", "input"),
        ({"model": "m", "input": 5}, 400, "invalid_type", "input"),
        ({"model": "m", "input": ["hi"]}, 400, "invalid_type", "input[0]"),
        (
            {"model": "m", "input": "x", "previous_response_id": "resp_nope"},
            400,
            "previous_response_not_found",
            "previous_response_id",
        ),
        (
            {"model": "m", "input": [{"type": "function_call_output", "call_id": "call_1", "output": "x"}]},
            400,
            None,
            "input",
        ),
    ],
)
def test_requests_openai_refuses_are_refused_in_its_shape(
    up: FakeUpstream, client: openai.OpenAI, body: dict, status: int, code: str | None, param: str
) -> None:
    up.script(Behavior(status=429))  # a refusal does not use up the script
    with pytest.raises(openai.BadRequestError) as refused:
        client.post("/responses", body=body, cast_to=dict)
    error = refused.value
    assert (error.status_code, error.code, error.param) == (status, code, param)
    assert isinstance(error.body, dict) and set(error.body) == {"message", "type", "param", "code"}
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="m", input="now the script")


def test_a_key_is_required(up: FakeUpstream, http: httpx2.Client) -> None:
    r = http.post(f"{up.base_url}/responses", json={"model": "m", "input": "x"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_only_stored_responses_can_be_continued_and_reset_forgets_them(
    up: FakeUpstream, client: openai.OpenAI
) -> None:
    kept = client.responses.create(model="m", input="one")
    gone = client.responses.create(model="m", input="two", store=False)
    assert list(up.responses) == [kept.id]
    assert client.responses.create(model="m", input="three", previous_response_id=kept.id).output_text
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="m", input="three", previous_response_id=gone.id)
    up.reset()
    assert up.responses == {}
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="m", input="three", previous_response_id=kept.id)


def test_responses_honour_the_behavior_knobs(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.script(
        Behavior(status=503, error_message="overloaded"),
        Behavior(usage=False, chunks=1),
        Behavior(chunks=5, cut_after=2),
        Behavior(cut_after=0),
    )
    with pytest.raises(openai.InternalServerError) as unavailable:
        client.responses.create(model="m", input="x")
    assert unavailable.value.status_code == 503 and unavailable.value.message.endswith("overloaded")
    quiet = client.responses.create(model="m", input="x")
    assert quiet.usage is None and quiet.output_text == "tok0 "
    seen: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        with client.responses.stream(model="m", input="x") as stream:
            seen.extend(e.delta for e in stream if e.type == "response.output_text.delta")
    assert seen == ["tok0 ", "tok1 "]
    with pytest.raises(openai.APIConnectionError):  # non-stream: half a body
        client.responses.create(model="m", input="x")


def test_responses_stream_deltas_are_flushed_one_by_one(up: FakeUpstream, client: openai.OpenAI) -> None:
    up.script(Behavior(chunks=3, chunk_delay_s=0.2))
    arrivals = []
    with client.responses.stream(model="m", input="x") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                arrivals.append(time.monotonic())
    assert arrivals[1] - arrivals[0] >= 0.15
    assert arrivals[2] - arrivals[0] >= 0.35


def test_azure_responses_paths(up: FakeUpstream, http: httpx2.Client) -> None:
    with openai.AzureOpenAI(
        azure_endpoint=up.root_url, api_key="az-key", api_version="2025-04-01-preview", max_retries=0
    ) as azure:
        r = azure.responses.create(model="my-deploy", input="hi")
    with openai.OpenAI(base_url=f"{up.root_url}/openai/v1", api_key="az-key", max_retries=0) as v1:
        r1 = v1.responses.create(model="my-deploy", input="hi")
    assert r.output_text == r1.output_text == "tok0 tok1 tok2 "
    preview, ga = up.requests
    assert (preview.path, preview.query) == ("/openai/responses", "api-version=2025-04-01-preview")
    assert preview.headers["api-key"] == "az-key" and preview.json["model"] == "my-deploy"
    assert ga.path == "/openai/v1/responses"
    # Azure has no per-deployment Responses route: a proxy that builds one must see a 404.
    wrong = http.post(f"{up.root_url}/openai/deployments/d/responses", json={"model": "m", "input": "x"})
    assert wrong.status_code == 404


CHAT_WEATHER: list[ChatCompletionToolParam] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER["parameters"] or {}}}
]


def test_chat_answers_the_weather_with_a_tool_call(client: openai.OpenAI) -> None:
    question: list[ChatCompletionMessageParam] = [{"role": "user", "content": "weather in Paris?"}]
    r = client.chat.completions.create(model="m", messages=question, tools=CHAT_WEATHER)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function" and call.id.startswith("call_")
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "fake"})
    chunks = list(
        client.chat.completions.create(
            model="m",
            messages=question,
            tools=CHAT_WEATHER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    pieces = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert pieces[0].id is not None and pieces[0].function is not None
    assert pieces[0].function.name == "get_weather"
    assert (
        "".join((p.function.arguments or "") if p.function else "" for p in pieces) == call.function.arguments
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(pieces)
    plain = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], tools=CHAT_WEATHER
    )
    assert plain.choices[0].message.content == "tok0 tok1 tok2 "


def test_chat_json_schema_answers_json_the_sdk_parses(client: openai.OpenAI) -> None:
    r = client.chat.completions.parse(model="m", messages=CHAT, response_format=Forecast)
    assert r.choices[0].message.parsed == Forecast(unit="c", days=[Day(name="fake", high=1.5, rain=True)])
