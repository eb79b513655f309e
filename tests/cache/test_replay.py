"""Streams folded into one response object, and unfolded again into valid SSE."""

from __future__ import annotations

import orjson

from asgi_llm.cache.replay import StreamAssembler, has_content, sse_events


def chunk(choices, **extra):
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": choices,
        **extra,
    }


def events(body: bytes) -> list:
    parts = [p for p in body.split(b"\n\n") if p]
    assert parts[-1] == b"data: [DONE]"
    return [orjson.loads(p.removeprefix(b"data: ")) for p in parts[:-1]]


def test_tool_calls_and_several_choices_fold_and_replay():
    assembler = StreamAssembler("chat")
    assembler.add(
        chunk(
            [
                {"index": 0, "delta": {"role": "assistant", "content": "Hel"}},
                {
                    "index": 1,
                    "delta": {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"ci'},
                            }
                        ],
                    },
                },
            ]
        )
    )
    assembler.add(
        chunk(
            [
                {"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"},
                {
                    "index": 1,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Paris"}'}}]},
                    "finish_reason": "tool_calls",
                },
            ]
        )
    )
    assembler.add(chunk([], usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}))
    response = assembler.result(None)
    first, second = response["choices"]
    assert first["message"] == {"role": "assistant", "content": "Hello"}
    assert second["message"]["content"] is None
    assert second["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        }
    ]
    assert second["finish_reason"] == "tool_calls"
    assert response["usage"]["total_tokens"] == 7 and response["object"] == "chat.completion"

    replayed = events(sse_events("chat", response, include_usage=True))
    again = StreamAssembler("chat")
    for event in replayed:
        again.add(event)
    assert again.result(None) == response
    assert replayed[-1]["choices"] == [] and replayed[-1]["usage"]["total_tokens"] == 7
    assert all(e["object"] == "chat.completion.chunk" for e in replayed)
    assert "usage" not in str(sse_events("chat", response, include_usage=False))


def test_text_completion_with_logprobs_round_trips():
    assembler = StreamAssembler("completions")
    for text, token in (("Once", "Once"), (" upon", " upon")):
        assembler.add(
            {
                "id": "t",
                "object": "text_completion",
                "created": 1,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "text": text,
                        "finish_reason": None,
                        "logprobs": {"tokens": [token], "token_logprobs": [-0.1]},
                    }
                ],
            }
        )
    assembler.add(
        {
            "id": "t",
            "object": "text_completion",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "text": "", "finish_reason": "length"}],
        }
    )
    response = assembler.result({"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})
    assert response["choices"][0]["text"] == "Once upon"
    assert response["choices"][0]["logprobs"]["tokens"] == ["Once", " upon"]
    again = StreamAssembler("completions")
    for event in events(sse_events("completions", response, include_usage=True)):
        again.add(event)
    assert again.result(None) == response


def test_empty_answers_have_no_content():
    assert not has_content("chat", {"choices": [{"message": {"role": "assistant", "content": ""}}]})
    assert has_content("chat", {"choices": [{"message": {"tool_calls": [{"id": "x"}]}}]})
    assert not has_content("embeddings", {"data": []})
    assert has_content("completions", {"choices": [{"text": "x"}]})
