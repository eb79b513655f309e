"""OpenAI chat requests -> Anthropic Messages (asgi_llm/translate/outbound.py), and the
round trip back through the inbound translation."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_llm.errors import InvalidRequest
from asgi_llm.translate import DEFAULT_MAX_TOKENS, chat_to_messages, messages_to_chat

USER = {"role": "user", "content": "hi"}


def to_anthropic(**payload: Any) -> dict[str, Any]:
    return chat_to_messages({"model": "public", "messages": [USER], **payload}, model="claude-x")


# -- the rules --------------------------------------------------------------------------------
def test_system_messages_are_hoisted_and_a_single_one_stays_a_string():
    out = chat_to_messages(
        {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, USER]}, model="claude-x"
    )
    assert out == {
        "model": "claude-x",
        "system": "Be brief.",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_several_system_and_developer_messages_become_system_blocks_in_order():
    out = chat_to_messages(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "One."},
                USER,
                {"role": "developer", "content": [{"type": "text", "text": "Two."}]},
            ],
        },
        model="c",
    )
    assert out["system"] == [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}]
    assert out["messages"] == [{"role": "user", "content": "hi"}]


def test_images_become_base64_or_url_sources():
    png = base64.b64encode(b"\x89PNG...").decode()
    out = to_anthropic(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{png}", "detail": "low"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ]
    )
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "data:image/png,notbase64", "ftp://x/y.png"])
def test_other_image_urls_are_refused(url):
    with pytest.raises(InvalidRequest) as caught:
        to_anthropic(
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
        )
    assert caught.value.param == "messages[0].content[0].image_url.url"


def test_tool_calls_and_results_become_tool_use_and_one_merged_user_turn():
    out = to_anthropic(
        messages=[
            USER,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "a", "arguments": '{"x": 1}'}},
                    {"id": "call_2", "type": "function", "function": {"name": "b", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "one"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "two"}]},
            {"role": "user", "content": "thanks"},
        ]
    )
    assert out["messages"] == [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "a", "input": {"x": 1}},
                {"type": "tool_use", "id": "call_2", "name": "b", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "one"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "two"}],
                },
                {"type": "text", "text": "thanks"},
            ],
        },
    ]


def test_consecutive_turns_of_one_role_are_merged():
    out = to_anthropic(
        messages=[
            USER,
            {"role": "user", "content": [{"type": "text", "text": "again"}]},
            {"role": "assistant", "content": "a"},
            {"role": "assistant", "content": "b"},
        ]
    )
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "again"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", "3"])
def test_tool_arguments_that_are_not_a_json_object_are_a_400(arguments):
    with pytest.raises(InvalidRequest) as caught:
        to_anthropic(
            messages=[
                USER,
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}
                    ],
                },
            ]
        )
    assert caught.value.status == 400
    assert caught.value.param == "messages[1].tool_calls[0].function.arguments"
    assert caught.value.code == "invalid_tool_arguments"


def test_parameters_map():
    out = to_anthropic(
        max_completion_tokens=50,
        max_tokens=99,
        temperature=0.2,
        top_p=0.9,
        stop="END",
        stream=True,
        stream_options={"include_usage": True},
        user="u-1",
        store=False,
        n=1,
        seed=None,
        logprobs=False,
    )
    assert out == {
        "model": "claude-x",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "stream": True,
        "metadata": {"user_id": "u-1"},
    }


def test_tools_and_tool_choice_map():
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": True,
        },
    }
    out = to_anthropic(tools=[tool, {"type": "function", "function": {"name": "now"}}])
    assert out["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in out
    cases = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}
    for given_choice, expected in cases.items():
        assert to_anthropic(tools=[tool], tool_choice=given_choice)["tool_choice"] == expected
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert to_anthropic(tools=[tool], tool_choice=named)["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
    }
    assert to_anthropic(tools=[tool], parallel_tool_calls=False)["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }


@pytest.mark.parametrize(
    "param,value",
    [
        ("n", 2),
        ("logprobs", True),
        ("top_logprobs", 3),
        ("logit_bias", {"50256": -100}),
        ("seed", 7),
        ("frequency_penalty", 0.5),
        ("presence_penalty", 1),
        ("response_format", {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}),
        ("response_format", {"type": "json_object"}),
        ("functions", [{"name": "f"}]),
        ("modalities", ["text", "audio"]),
        ("verbosity", "low"),
        ("made_up_field", 1),
    ],
)
def test_parameters_without_an_equivalent_are_refused_by_name(param, value):
    with pytest.raises(InvalidRequest) as caught:
        to_anthropic(**{param: value})
    assert caught.value.status == 400
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == param
    assert param in caught.value.message


def test_neutral_values_of_refusable_parameters_pass():
    out = to_anthropic(
        n=1,
        logprobs=False,
        logit_bias={},
        frequency_penalty=0.0,
        presence_penalty=0,
        response_format={"type": "text"},
        modalities=["text"],
    )
    assert set(out) == {"model", "messages", "max_tokens"}


def test_audio_and_file_parts_are_refused():
    with pytest.raises(InvalidRequest) as caught:
        to_anthropic(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}])
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == "messages[0].content[0].type"


# -- properties --------------------------------------------------------------------------------
text = st.text(min_size=1, max_size=12)
names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=6,
)
arguments = st.dictionaries(names, json_values, max_size=3)
image_part = st.one_of(
    st.builds(
        lambda data: {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(data).decode()},
        },
        st.binary(max_size=12),
    ),
    st.builds(lambda n: {"type": "image_url", "image_url": {"url": f"https://img.test/{n}.png"}}, names),
)
text_part = st.builds(lambda t: {"type": "text", "text": t}, text)
user_message = st.builds(
    lambda c: {"role": "user", "content": c}, text | st.lists(text_part | image_part, min_size=1, max_size=3)
)


@st.composite
def assistant_turn(draw: Any) -> list[dict[str, Any]]:
    """An assistant message, and the tool messages answering its calls."""
    calls = draw(st.lists(st.tuples(names, arguments), max_size=2))
    content = draw(text | st.none()) if calls else draw(text)
    if not calls:
        return [{"role": "assistant", "content": content}]
    ids = [f"call_{draw(names)}_{i}" for i in range(len(calls))]
    message = {
        "role": "assistant",
        "content": content,
        "tool_calls": [
            {
                "id": ident,
                "type": "function",
                "function": {"name": name, "arguments": orjson.dumps(args).decode()},
            }
            for ident, (name, args) in zip(ids, calls, strict=True)
        ],
    }
    results = [{"role": "tool", "tool_call_id": ident, "content": draw(text)} for ident in ids]
    return [message, *results]


@st.composite
def chat_requests(draw: Any) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(text)})
    for _ in range(draw(st.integers(1, 4))):
        messages.append(draw(user_message))
        if draw(st.booleans()):
            messages.extend(draw(assistant_turn()))
    payload: dict[str, Any] = {"model": "public", "messages": messages}
    optional = {
        "max_tokens": st.integers(1, 100_000),
        "temperature": st.floats(0, 1, allow_nan=False),
        "top_p": st.floats(0, 1, allow_nan=False),
        "stop": st.lists(text, min_size=1, max_size=3),
        "stream": st.booleans(),
        "user": names,
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            payload[name] = draw(strategy)
    if draw(st.booleans()):
        tools = draw(st.lists(names, min_size=1, max_size=3, unique=True))
        payload["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": n,
                    "description": draw(text),
                    "parameters": {"type": "object", "properties": {"p": {"type": "string"}}},
                },
            }
            for n in tools
        ]
        payload["tool_choice"] = draw(
            st.sampled_from(
                ["auto", "none", "required", {"type": "function", "function": {"name": tools[0]}}]
            )
        )
        if draw(st.booleans()):
            payload["parallel_tool_calls"] = False
    return payload


def normalized(payload: dict[str, Any]) -> dict[str, Any]:
    """The meaning of a chat request: consecutive turns of one role merged, content as parts,
    tool arguments parsed, request options that are not the answer's left out."""
    messages: list[dict[str, Any]] = []
    for message in payload["messages"]:
        content = message.get("content")
        parts = (
            ([{"type": "text", "text": content}] if content else [])
            if isinstance(content, str)
            else list(content or [])
        )
        if message["role"] == "tool":
            messages.append({"role": "tool", "id": message["tool_call_id"], "parts": parts})
            continue
        calls = [
            (c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"]))
            for c in message.get("tool_calls") or ()
        ]
        if messages and messages[-1]["role"] == message["role"] and message["role"] != "system":
            messages[-1]["parts"] += parts
            messages[-1]["calls"] += calls
        else:
            messages.append({"role": message["role"], "parts": parts, "calls": calls})
    out = {k: v for k, v in payload.items() if k not in ("messages", "model", "stream_options")}
    if isinstance(out.get("stop"), str):
        out["stop"] = [out["stop"]]
    if out.get("stream") is False:
        del out["stream"]
    if "tools" in out and out.get("parallel_tool_calls") is False:
        out.setdefault("tool_choice", "auto")
        if out["tool_choice"] == "none":  # no calls at all: parallel or not means nothing
            del out["parallel_tool_calls"]
    out.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    return {"messages": messages, **out}


@settings(max_examples=150, deadline=None)
@given(chat_requests())
def test_openai_to_anthropic_to_openai_keeps_the_request(payload):
    """For the supported subset; consecutive same-role turns merge, system is hoisted."""
    anthropic = chat_to_messages(payload, model="claude-x")
    orjson.dumps(anthropic)  # serializable as it is sent
    roles = [turn["role"] for turn in anthropic["messages"]]
    assert roles[0] == "user"  # and the turns alternate, as Anthropic requires
    assert all(a != b for a, b in zip(roles, roles[1:], strict=False))
    back = messages_to_chat({**anthropic, "model": "public"})
    assert normalized(back) == normalized(payload)


anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "role",
                    "content",
                    "type",
                    "text",
                    "id",
                    "name",
                    "input",
                    "tool_use_id",
                    "source",
                    "url",
                    "tool_calls",
                    "function",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "assistant", "tool", "system", "function"])},
            optional={"content": anything, "tool_calls": anything, "tool_call_id": anything},
        ),
        min_size=1,
        max_size=4,
    ),
    st.dictionaries(st.sampled_from(["tools", "tool_choice", "stop"]), anything),
)
def test_any_outbound_chat_body_is_translated_or_refused_with_a_400(messages, extra):
    try:
        chat_to_messages({"model": "m", "messages": messages, **extra}, model="c")
    except InvalidRequest as exc:
        assert exc.status == 400


# -- thinking ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("effort", "budget"),
    [("minimal", 1024), ("low", 2048), ("medium", 8192), ("high", 16384), ("xhigh", 32768)],
)
def test_reasoning_effort_becomes_a_thinking_budget_with_room_for_the_answer(effort, budget):
    out = to_anthropic(reasoning_effort=effort)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert out["max_tokens"] == DEFAULT_MAX_TOKENS + budget


def test_a_client_cap_counts_the_thinking_and_bounds_the_budget():
    assert to_anthropic(reasoning_effort="high", max_tokens=20000)["thinking"]["budget_tokens"] == 16384
    out = to_anthropic(reasoning_effort="high", max_completion_tokens=5000)
    assert (out["max_tokens"], out["thinking"]["budget_tokens"]) == (5000, 4999)
    with pytest.raises(InvalidRequest) as caught:
        to_anthropic(reasoning_effort="low", max_tokens=800)
    assert caught.value.param == "reasoning_effort"


def test_no_effort_means_no_thinking_and_an_unknown_one_is_a_400():
    assert "thinking" not in to_anthropic(reasoning_effort="none")
    assert "thinking" not in to_anthropic(reasoning_effort=None)
    with pytest.raises(InvalidRequest) as caught:
        to_anthropic(reasoning_effort="extreme")
    assert caught.value.param == "reasoning_effort"


def test_signed_thinking_blocks_go_back_first_and_unsigned_reasoning_stays_out():
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    signed = {"type": "thinking", "thinking": "Hm.", "signature": "sig"}
    redacted = {"type": "redacted_thinking", "data": "abc"}
    out = to_anthropic(
        messages=[
            USER,
            {
                "role": "assistant",
                "content": "Checking.",
                "reasoning_content": "Hm.",
                "thinking_blocks": [signed, redacted],
                "tool_calls": [call],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "ok"},
        ]
    )
    assert out["messages"][1]["content"] == [
        signed,
        redacted,
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
    ]
    plain = to_anthropic(messages=[USER, {"role": "assistant", "content": "Hi.", "reasoning_content": "Hm."}])
    assert plain["messages"][1] == {"role": "assistant", "content": "Hi."}
    with pytest.raises(InvalidRequest) as caught:  # a thinking block Anthropic would refuse
        to_anthropic(
            messages=[USER, {"role": "assistant", "content": "x", "thinking_blocks": [{"type": "thinking"}]}]
        )
    assert caught.value.param == "messages[1].thinking_blocks[0]"
