"""The Gemini translations (asgi_llm/translate/gemini_*.py), each direction against golden
fixtures (tests/translate/fixtures/gemini/*.json: a description, the input and the exact
expected output), and their refusals, ids and error mapping one by one."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from asgi_llm.config.schema import Deployment
from asgi_llm.errors import InvalidRequest
from asgi_llm.providers.gemini import google_error
from asgi_llm.sse import SSEError
from asgi_llm.translate.gemini_embeddings import (
    embed_request,
    embeddings_list,
    gemini_embeddings,
    predict_embeddings,
    predict_request,
)
from asgi_llm.translate.gemini_ids import call_id, signature_of
from asgi_llm.translate.gemini_request import chat_to_gemini
from asgi_llm.translate.gemini_response import gemini_to_completion
from asgi_llm.translate.gemini_schema import to_gemini_schema
from asgi_llm.translate.gemini_stream import GeminiErrorEvent, GeminiToChatStream

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
CREATED = 1700000000


def names(kind: str) -> list[str]:
    found = sorted(path.stem for path in FIXTURES.glob(f"{kind}_*.json"))
    assert found, f"no {kind} fixtures"
    return found


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(event) + b"\r\n\r\n" for event in events)


def translate_stream(
    events: list[dict[str, Any]], include_usage: bool, *, step: int = 1, candidates: int = 1
) -> tuple[list[Any], Any]:
    translator = GeminiToChatStream(
        created=CREATED, model="gemini-fixture", include_usage=include_usage, candidates=candidates
    )
    raw = sse(events)
    out = b"".join(translator.feed(raw[i : i + step]) for i in range(0, len(raw), step))
    chunks = [piece.removeprefix("data: ") for piece in out.decode().split("\n\n") if piece]
    return [c if c == "[DONE]" else json.loads(c) for c in chunks], translator


# -- golden fixtures, each direction ---------------------------------------------------------------
@pytest.mark.parametrize("name", names("request"))
def test_golden_request(name):
    fixture = load(name)
    assert chat_to_gemini(fixture["input"]) == fixture["expected"], fixture["description"]


@pytest.mark.parametrize("name", names("answer"))
def test_golden_answer(name):
    fixture = load(name)
    completion = gemini_to_completion(fixture["input"], model="gemini-fixture", created=CREATED)
    assert completion == fixture["expected"], fixture["description"]


@pytest.mark.parametrize("step", [1, 7, 10_000])
@pytest.mark.parametrize("name", names("stream"))
def test_golden_stream_however_the_bytes_are_cut(name, step):
    fixture = load(name)
    chunks, translator = translate_stream(
        fixture["input"], fixture["include_usage"], step=step, candidates=fixture.get("n", 1)
    )
    assert chunks == fixture["expected"], fixture["description"]
    assert translator.done and list(translator.usage or ()) == (fixture["usage"] or [])


@pytest.mark.parametrize("name", ["embed_one_text", "embed_batch"])
def test_golden_embeddings_request(name):
    fixture = load(name)
    method, body = embed_request(fixture["input"], model="gemini-embedding-001")
    assert {"method": method, "body": body} == fixture["expected"], fixture["description"]


def test_golden_vertex_predict_request():
    fixture = load("embed_vertex_predict")
    assert predict_request(fixture["input"]) == fixture["expected"]


def test_golden_embeddings_answers():
    batch = load("embed_answer_batch")
    vectors = gemini_embeddings(batch["input"])
    assert embeddings_list(vectors, model="gemini-embedding-001", encoding="base64") == batch["expected"]
    predicted = load("embed_answer_predict")
    vectors, tokens = predict_embeddings(predicted["input"])
    answer = embeddings_list(vectors, model="text-embedding-005", encoding=None, prompt_tokens=tokens or 0)
    assert answer == predicted["expected"]


# -- requests: what is refused, by name --------------------------------------------------------------
def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "Hi"}], **fields}


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"logit_bias": {"1": 5}}, "logit_bias"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"something_new": 1}, "something_new"),
    ],
)
def test_fields_gemini_lacks_are_refused_by_name(fields, param):
    with pytest.raises(InvalidRequest) as caught:
        chat_to_gemini(chat(**fields))
    assert (caught.value.param, caught.value.code) == (param, "unsupported_parameter")


def test_n_is_gemini_candidate_count_up_to_eight():
    assert chat_to_gemini(chat(n=3))["generationConfig"] == {"candidateCount": 3}
    assert "generationConfig" not in chat_to_gemini(chat(n=1))
    with pytest.raises(InvalidRequest) as caught:
        chat_to_gemini(chat(n=9))
    assert (caught.value.param, caught.value.code) == ("n", "invalid_value")


@pytest.mark.parametrize(
    "messages, param, code",
    [
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/cat.png"}}]}],
            "messages[0].content[0].image_url.url",
            "unsupported_image_url",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}],
                }
            ],
            "messages[0].content[0].image_url.url",
            "invalid_value",
        ),
        (
            [{"role": "tool", "tool_call_id": "nope", "content": "x"}],
            "messages[0].tool_call_id",
            "invalid_value",
        ),
        ([{"role": "function", "content": "x"}], "messages[0].role", "invalid_value"),
        (
            [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}],
            "messages[0].content[0].file",
            "unsupported_parameter",
        ),
        (
            [
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
                    ],
                }
            ],
            "messages[0].tool_calls[0].function.arguments",
            "invalid_tool_arguments",
        ),
    ],
)
def test_messages_gemini_cannot_take_are_refused_naming_the_field(messages, param, code):
    with pytest.raises(InvalidRequest) as caught:
        chat_to_gemini({"model": "m", "messages": messages})
    assert (caught.value.param, caught.value.code) == (param, code)


def test_reasoning_effort_must_be_one_gemini_can_budget():
    assert chat_to_gemini(chat(reasoning_effort="none"))["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 0}
    }
    with pytest.raises(InvalidRequest) as caught:
        chat_to_gemini(chat(reasoning_effort="extreme"))
    assert caught.value.param == "reasoning_effort"


# -- schemas -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "schema, where",
    [
        ({"type": "object", "properties": {"a": {"type": "object"}}}, "s.properties.a"),
        ({"type": "object", "properties": {"a": {}}}, "s.properties.a"),
        ({"type": "object", "properties": {"a": {"not": {"type": "string"}}}}, "s.properties.a.not"),
        (
            {"type": "object", "properties": {"a": {"type": "integer", "multipleOf": 2}}},
            "s.properties.a.multipleOf",
        ),
        (
            {"type": "object", "properties": {"a": {"type": "number", "exclusiveMinimum": 0}}},
            "s.properties.a.exclusiveMinimum",
        ),
        ({"type": "object", "properties": {"a": {"enum": [1, 2]}}}, "s.properties.a.enum"),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "object", "additionalProperties": {"type": "string"}}},
            },
            "s.properties.a.additionalProperties",
        ),
        (
            {"type": "object", "properties": {"a": {"allOf": [{"type": "string"}, {"minLength": 1}]}}},
            "s.properties.a.allOf",
        ),
        (
            {"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}},
            "s.properties.a.$ref",
        ),
        (
            {
                "type": "object",
                "properties": {"n": {"$ref": "#/$defs/Node"}},
                "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
            },
            "s.properties.n.properties.next",
        ),
    ],
)
def test_a_schema_keyword_gemini_cannot_say_is_refused_where_it_is(schema, where):
    with pytest.raises(InvalidRequest) as caught:
        to_gemini_schema(schema, "s")
    assert caught.value.param == where and caught.value.code in ("unsupported_schema", "invalid_value")


def test_refs_that_double_at_every_level_are_refused_before_they_expand():
    defs = {
        f"L{i}": {
            "type": "object",
            "properties": {"a": {"$ref": f"#/$defs/L{i + 1}"}, "b": {"$ref": f"#/$defs/L{i + 1}"}},
        }
        for i in range(30)
    }
    defs["L30"] = {"type": "string"}
    with pytest.raises(InvalidRequest, match="expands to more than"):
        to_gemini_schema({"$ref": "#/$defs/L0", "$defs": defs}, "s")


def test_nullable_forms_and_one_of():
    schema = {
        "type": "object",
        "properties": {
            "a": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "b": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "c": {"type": ["string", "integer", "null"]},
            "d": {"enum": ["x", None]},
        },
    }
    assert to_gemini_schema(schema, "s")["properties"] == {
        "a": {"type": "STRING", "nullable": True},
        "b": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]},
        "c": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}], "nullable": True},
        "d": {"enum": ["x"], "format": "enum", "type": "STRING", "nullable": True},
    }


# -- ids and signatures ------------------------------------------------------------------------------
def test_call_ids_are_stable_per_response_and_carry_signatures_in_id_characters():
    signature = base64.b64encode(bytes(range(256))).decode()
    ident = call_id("resp-1", 0, signature)
    assert ident == call_id("resp-1", 0, signature) and ident != call_id("resp-1", 1, signature)
    assert set(ident) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
    assert signature_of(ident) == signature
    assert signature_of(call_id("resp-1", 0)) is None and signature_of("toolu_01abc") is None
    assert call_id(None, 0) != call_id(None, 0)  # no response id: random


# -- streams: errors ---------------------------------------------------------------------------------
def test_an_error_object_in_the_stream_fails_it():
    translator = GeminiToChatStream(created=CREATED, model="m", include_usage=False)
    with pytest.raises(GeminiErrorEvent, match="UNAVAILABLE"):
        translator.feed(sse([{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}]))


@pytest.mark.parametrize(
    "data", [b"data: not json\r\n\r\n", b"data: [1]\r\n\r\n", b'data: {"candidates": 5}\r\n\r\n']
)
def test_a_malformed_event_is_an_sse_error(data):
    with pytest.raises(SSEError):
        GeminiToChatStream(created=CREATED, model="m", include_usage=False).feed(data)


def test_nothing_after_the_finish_is_relayed():
    events = [
        {"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"}]},
        {"candidates": [{"content": {"parts": [{"text": "late"}]}}]},
    ]
    chunks, _ = translate_stream(events, False, step=10_000)
    assert "late" not in json.dumps(chunks) and chunks[-1] == "[DONE]"


# -- errors --------------------------------------------------------------------------------------------
DEPLOYMENT = Deployment(
    id="g", provider="gemini", model="m", api_key="AIzaSyTHISISAFAKEKEYFORTESTS0123456789"
)


class Headers(dict):  # type: ignore[type-arg]
    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def test_google_errors_keep_their_message_status_and_retry_delay():
    body = orjson.dumps(
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}],
            }
        }
    )
    error = google_error(429, body, Headers(), DEPLOYMENT)
    assert (error.status, error.retryable, error.retry_after) == (429, True, 17.0)
    assert (error.type, error.code) == ("rate_limit_error", "resource_exhausted")
    listed = orjson.dumps([{"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}])
    error = google_error(400, listed, Headers(), DEPLOYMENT)
    assert (error.message, error.type, error.code, error.retryable) == (
        "bad",
        "invalid_request_error",
        "invalid_argument",
        False,
    )
    assert google_error(503, b"<html>", Headers({"retry-after": "2"}), DEPLOYMENT).retry_after == 2.0


def test_a_key_an_upstream_message_echoes_is_masked():
    message = (
        f"API key {DEPLOYMENT.api_key} and AIzaSyOTHERKEYOTHERKEYOTHERKEY12345 and ya29.a0Af-token are bad"
    )
    error = google_error(400, orjson.dumps({"error": {"message": message}}), Headers(), DEPLOYMENT)
    assert "AIza" not in error.message and "ya29." not in error.message


def test_an_empty_assistant_turn_is_left_out_and_its_neighbours_merge():
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "user", "content": "b"},
    ]
    assert chat_to_gemini({"model": "m", "messages": messages}) == {
        "contents": [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]
    }


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"top_logprobs": 2}, "top_logprobs"),  # without logprobs: true, as OpenAI refuses it
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": "2"}, "top_logprobs"),
        ({"logprobs": "yes"}, "logprobs"),
    ],
)
def test_bad_logprobs_are_refused_by_name(fields, param):
    with pytest.raises(InvalidRequest) as caught:
        chat_to_gemini(chat(**fields))
    assert caught.value.param == param


def test_logprobs_without_alternatives_and_their_neutral_values():
    assert chat_to_gemini(chat(logprobs=True, top_logprobs=0))["generationConfig"] == {
        "responseLogprobs": True
    }
    assert "generationConfig" not in chat_to_gemini(chat(logprobs=False, top_logprobs=0))


def test_a_malformed_logprobs_result_is_a_bad_answer():
    answer = load("answer_logprobs")["input"]
    answer["candidates"][0]["logprobsResult"]["chosenCandidates"][0]["logProbability"] = "low"
    with pytest.raises(ValueError):
        gemini_to_completion(answer, model="gemini-fixture", created=CREATED)
