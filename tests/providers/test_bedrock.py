"""The Bedrock provider end to end: the official `openai` and `anthropic` SDKs against a real
`asgi-llm serve` whose `provider: bedrock` deployments call a fake Bedrock Runtime that
verifies every SigV4 signature and streams real event-stream frames."""

from __future__ import annotations

import base64
import re
import struct

import anthropic
import httpx2
import openai
import orjson
import pytest

from tests.conftest import assert_error_shape, find_secrets
from tests.fakes.bedrock import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Credentials, FakeBedrock, Turn
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.harness import ProxyServer

MODEL_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"
USER = [{"role": "user", "content": "Say hello"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CLAUDE_WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
SESSION_KEY = Credentials("ASIAFAKEBEDROCK00002", "session-bedrock-fake-secret", "FwoGZXIvYXdzEFAKE-token")


def bedrock(ident: str, fake: FakeBedrock, **extra: object) -> dict[str, object]:
    return {
        "id": ident,
        "provider": "bedrock",
        "model": MODEL_ID,
        "region": "us-east-1",
        "base_url": fake.base_url,
        "aws_access_key_id": ACCESS_KEY_ID,
        "aws_secret_access_key": SECRET_ACCESS_KEY,
        **extra,
    }


@pytest.fixture(scope="module")
def fakes():
    with FakeBedrock("aws") as aws, FakeUpstream("gpt") as gpt:
        aws.keys[SESSION_KEY.access_key_id] = SESSION_KEY
        yield aws, gpt


@pytest.fixture(scope="module")
def proxy(fakes, tmp_path_factory):
    aws, gpt = fakes
    env_only = {k: v for k, v in bedrock("env", aws).items() if not k.startswith("aws_") and k != "region"}
    config = {
        "models": [
            {"name": "claude", "deployments": [bedrock("claude-b", aws)]},
            {
                "name": "claude-or-gpt",
                "deployments": [
                    bedrock("first-b", aws),
                    {
                        "id": "gpt-fallback",
                        "provider": "openai-compatible",
                        "model": "gpt-up",
                        "base_url": gpt.base_url,
                        "api_key": "sk-upstream-secret-gpt",
                    },
                ],
            },
            {"name": "wrong-region", "deployments": [bedrock("eu-b", aws, region="eu-west-1")]},
            {
                "name": "bad-key-or-gpt",
                "deployments": [
                    bedrock("bad-key-b", aws, aws_secret_access_key="not-" + SECRET_ACCESS_KEY),
                    {
                        "id": "gpt-after-bad-key",
                        "provider": "openai-compatible",
                        "model": "gpt-up",
                        "base_url": gpt.base_url,
                        "api_key": "sk-upstream-secret-gpt",
                    },
                ],
            },
            {
                "name": "session",
                "deployments": [
                    bedrock(
                        "session-b",
                        aws,
                        aws_access_key_id=SESSION_KEY.access_key_id,
                        aws_secret_access_key=SESSION_KEY.secret_access_key,
                        aws_session_token=SESSION_KEY.session_token,
                    )
                ],
            },
            {"name": "from-env", "deployments": [env_only]},
            {"name": "titan", "deployments": [bedrock("titan-b", aws, model="amazon.titan-embed-text-v2:0")]},
            {"name": "cohere", "deployments": [bedrock("cohere-b", aws, model="cohere.embed-english-v3")]},
        ],
        # Failures here are scripted one by one: none may cool a deployment for the next test.
        "routing": {"retries": 1, "cooldown": {"failures": 1000}},
        "metrics": {"prometheus": {"path": "/metrics"}},
    }
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_REGION": "us-east-1",
    }
    with ProxyServer(config, tmp_path_factory.mktemp("bedrock"), env=env) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(fakes):
    aws, gpt = fakes
    aws.reset()
    gpt.reset()
    aws.default, gpt.default = Turn(), Behavior()
    aws.clock_offset_s = 0.0


@pytest.fixture
def sdk(proxy):
    with openai.OpenAI(base_url=proxy.base_url, api_key="sk-client-key", max_retries=0, timeout=20) as client:
        yield client


@pytest.fixture
def claude_sdk(proxy):
    with anthropic.Anthropic(
        base_url=proxy.root_url, api_key="sk-client-key", max_retries=0, timeout=20
    ) as client:
        yield client


def counter(proxy: ProxyServer, name: str, deployment: str) -> float:
    text = httpx2.get(proxy.root_url + "/metrics", timeout=10).text
    pattern = rf'^asgi_llm_{name}_total{{[^}}]*deployment="{re.escape(deployment)}"[^}}]*}} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, text, re.MULTILINE))


# -- the openai SDK ----------------------------------------------------------------------------
def test_chat_reaches_bedrock_signed_in_converse_form(sdk, fakes):
    aws = fakes[0]
    raw = sdk.chat.completions.with_raw_response.create(
        model="claude",
        messages=[{"role": "system", "content": "Be brief."}, *USER],
        temperature=0.5,
        top_p=0.9,
        max_tokens=100,
        stop=["###"],
        user="alice",
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the fake Bedrock."
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 7)
    assert raw.headers["x-llm-deployment"] == "claude-b"
    seen = aws.requests[-1]
    assert seen.path == f"/model/{MODEL_ID}/converse"
    assert seen.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/")
    assert "sk-client-key" not in str(seen.headers)
    assert seen.json == {
        "messages": [{"role": "user", "content": [{"text": "Say hello"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["###"]},
    }
    assert aws.refused == []


def test_stream_with_every_frame_split_across_reads(sdk, fakes):
    fakes[0].default = Turn(
        text="One two three four.", chunks=4, split_frames=True, cache_read=5, cache_write=3
    )
    chunks = list(
        sdk.chat.completions.create(
            model="claude", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert texts == ["One ", "two ", "thre", "e fo", "ur."] or "".join(texts) == "One two three four."
    assert chunks[-2].choices[0].finish_reason == "stop"
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and (usage.prompt_tokens, usage.completion_tokens) == (11 + 5 + 3, 7)
    assert usage.prompt_tokens_details.cached_tokens == 5
    assert fakes[0].requests[-1].path.endswith("/converse-stream")
    plain = list(sdk.chat.completions.create(model="claude", messages=USER, stream=True))
    assert all(c.usage is None for c in plain) and plain[-1].choices[0].finish_reason == "stop"


def test_usage_record_equals_what_bedrock_reported(sdk, proxy, fakes):
    before = counter(proxy, "prompt_tokens", "claude-b"), counter(proxy, "completion_tokens", "claude-b")
    fakes[0].script(
        Turn(input_tokens=100, output_tokens=20, cache_read=300, cache_write=40),
        Turn(input_tokens=7, output_tokens=9, cache_read=2, split_frames=True),
    )
    sdk.chat.completions.create(model="claude", messages=USER)
    list(sdk.chat.completions.create(model="claude", messages=USER, stream=True))
    after = counter(proxy, "prompt_tokens", "claude-b"), counter(proxy, "completion_tokens", "claude-b")
    assert (after[0] - before[0], after[1] - before[1]) == (440 + 9, 29)


def test_tools_over_two_turns(sdk, fakes):
    aws = fakes[0]
    aws.script(
        Turn(text="", tool_uses=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})])
    )
    completion = sdk.chat.completions.create(
        model="claude", messages=USER, tools=[WEATHER], tool_choice="required"
    )
    calls = completion.choices[0].message.tool_calls
    assert completion.choices[0].finish_reason == "tool_calls"
    assert [(c.function.name, orjson.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert aws.requests[-1].json["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "The weather in a city.",
                    "inputSchema": {"json": WEATHER["function"]["parameters"]},
                }
            }
        ],
        "toolChoice": {"any": {}},
    }
    follow = sdk.chat.completions.create(
        model="claude",
        tools=[WEATHER],
        messages=[
            *USER,
            completion.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": calls[0].id, "content": "Sunny, 21 C"},
            {"role": "tool", "tool_call_id": calls[1].id, "content": "Snow, -3 C"},
        ],
    )
    assert follow.choices[0].message.content == "Hello from the fake Bedrock."
    turns = aws.requests[-1].json["messages"]
    assert turns[1] == {
        "role": "assistant",
        "content": [
            {"toolUse": {"toolUseId": calls[0].id, "name": "get_weather", "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": calls[1].id, "name": "get_weather", "input": {"city": "Oslo"}}},
        ],
    }
    assert turns[2] == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": calls[0].id, "content": [{"text": "Sunny, 21 C"}]}},
            {"toolResult": {"toolUseId": calls[1].id, "content": [{"text": "Snow, -3 C"}]}},
        ],
    }


def test_stream_of_parallel_tool_calls(sdk, fakes):
    fakes[0].default = Turn(
        text="Let me look.", tool_uses=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})]
    )
    chunks = list(sdk.chat.completions.create(model="claude", messages=USER, tools=[WEATHER], stream=True))
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += call.id or ""
            slot["name"] += call.function.name or ""
            slot["arguments"] += call.function.arguments or ""
    assert [(c["name"], orjson.loads(c["arguments"])) for _, c in sorted(calls.items())] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert all(c["id"].startswith("tooluse_") for c in calls.values())
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_image_data_urls_reach_bedrock_as_bytes(sdk, fakes):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()
    sdk.chat.completions.create(
        model="claude",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            }
        ],
    )
    assert fakes[0].requests[-1].json["messages"][0]["content"] == [
        {"text": "What is in this?"},
        {"image": {"format": "png", "source": {"bytes": png}}},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model="claude",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}],
                }
            ],
        )
    assert caught.value.body["param"] == "messages[0].content[0].image_url.url"


def test_embeddings_from_titan_and_cohere(sdk, proxy, fakes):
    aws = fakes[0]
    vector = sdk.embeddings.create(model="titan", input="The cat sat", dimensions=8)  # base64 on the wire
    assert len(vector.data) == 1 and len(vector.data[0].embedding) == 8
    assert vector.usage.prompt_tokens == 3
    assert aws.requests[-1].path == "/model/amazon.titan-embed-text-v2:0/invoke"
    assert aws.requests[-1].json == {"inputText": "The cat sat", "dimensions": 8}
    floats = sdk.embeddings.create(model="titan", input="The cat sat", dimensions=8, encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(vector.data[0].embedding, abs=1e-6)
    batch = sdk.embeddings.create(model="cohere", input=["one", "two", "three"])
    assert [d.index for d in batch.data] == [0, 1, 2] and len(batch.data[2].embedding) == 8
    assert aws.requests[-1].json == {"texts": ["one", "two", "three"], "input_type": "search_document"}
    raw = httpx2.post(
        proxy.base_url + "/embeddings", json={"model": "titan", "input": ["a", "b"]}, timeout=10
    )
    assert assert_error_shape(raw, 400)["param"] == "input"
    packed = base64.b64decode(
        httpx2.post(
            proxy.base_url + "/embeddings",
            json={"model": "titan", "input": "x", "dimensions": 4, "encoding_format": "base64"},
            timeout=10,
        ).json()["data"][0]["embedding"]
    )
    assert len(struct.unpack("<4f", packed)) == 4


def test_throttled_bedrock_fails_over_to_another_provider_while_streaming(sdk, fakes):
    aws, gpt = fakes
    aws.script(Turn(status=429, error_message="Too many requests, please wait before trying again."))
    stream = sdk.chat.completions.with_raw_response.create(model="claude-or-gpt", messages=USER, stream=True)
    assert stream.headers["x-llm-deployment"] == "gpt-fallback" and stream.headers["x-llm-attempts"] == "2"
    assert "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices) == "tok0 tok1 tok2 "
    # A throttlingException inside the stream, before the first token: the same.
    aws.script(Turn(exception_at=1))
    stream = sdk.chat.completions.with_raw_response.create(model="claude-or-gpt", messages=USER, stream=True)
    assert stream.headers["x-llm-deployment"] == "gpt-fallback"
    assert len(aws.requests) == 2 and len(gpt.requests) == 2


@pytest.mark.parametrize(
    "name,status", [("ServiceUnavailableException", 503), ("ModelNotReadyException", 429)]
)
def test_unavailable_and_not_ready_fail_over(sdk, fakes, name, status):
    fakes[0].script(Turn(status=status, error_name=name))
    raw = sdk.chat.completions.with_raw_response.create(model="claude-or-gpt", messages=USER)
    assert raw.headers["x-llm-deployment"] == "gpt-fallback"


def test_a_validation_error_is_passed_on_with_bedrock_message(sdk, fakes):
    fakes[0].script(Turn(status=400, error_message="The model returned the following errors: bad input"))
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="claude-or-gpt", messages=USER)
    assert caught.value.body["message"] == "The model returned the following errors: bad input"
    assert (caught.value.body["type"], caught.value.body["code"]) == (
        "invalid_request_error",
        "ValidationException",
    )
    assert fakes[1].requests == []  # a 4xx is final


def test_a_signature_for_another_region_or_out_of_time_is_refused_as_aws_refuses_it(sdk, fakes):
    """AWS's 403 refuses the proxy's signature, not the client's key: a 502
    `upstream_auth_failed` with AWS's message (errors.UpstreamStatus), never a 403."""
    aws = fakes[0]
    with pytest.raises(openai.InternalServerError) as caught:
        sdk.chat.completions.create(model="wrong-region", messages=USER)
    assert caught.value.status_code == 502 and caught.value.body["code"] == "upstream_auth_failed"
    assert "scoped to a valid region" in caught.value.body["message"]
    aws.clock_offset_s = 400  # the proxy's clock is 6 2/3 minutes behind AWS's
    with pytest.raises(openai.InternalServerError) as caught:
        sdk.chat.completions.create(model="claude", messages=USER)
    assert "(HTTP 403 InvalidSignatureException): Signature expired" in caught.value.body["message"]
    assert caught.value.body["type"] == "upstream_error"
    # One attempt each although retries is 1: refused credentials are not tried again.
    assert aws.refused == ["InvalidSignatureException", "InvalidSignatureException"]
    assert not find_secrets(str(caught.value.body)) and ACCESS_KEY_ID not in str(caught.value.body)
    aws.clock_offset_s = 240  # within 5 minutes: accepted
    assert sdk.chat.completions.create(model="claude", messages=USER).choices[0].message.content


def test_a_deployment_whose_key_aws_refuses_fails_over_and_cools_down(sdk, fakes):
    aws, gpt = fakes
    raw = sdk.chat.completions.with_raw_response.create(model="bad-key-or-gpt", messages=USER)
    assert raw.headers["x-llm-deployment"] == "gpt-after-bad-key" and raw.headers["x-llm-attempts"] == "2"
    assert aws.refused == ["InvalidSignatureException"]
    # Cooled down at once: the next request goes to the fallback without trying it again.
    raw = sdk.chat.completions.with_raw_response.create(model="bad-key-or-gpt", messages=USER, stream=True)
    assert raw.headers["x-llm-deployment"] == "gpt-after-bad-key" and raw.headers["x-llm-attempts"] == "1"
    assert len(aws.requests) == 1 and len(gpt.requests) == 2


def test_json_mode_is_a_forced_tool_whose_input_is_the_answer(sdk, fakes):
    aws = fakes[0]
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    response_format = {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}
    completion = sdk.chat.completions.create(model="claude", messages=USER, response_format=response_format)
    assert orjson.loads(completion.choices[0].message.content) == {"city": "fake"}
    assert completion.choices[0].finish_reason == "stop" and not completion.choices[0].message.tool_calls
    sent = aws.requests[-1].json["toolConfig"]
    assert sent["toolChoice"] == {"tool": {"name": "json_response"}}
    assert sent["tools"][0]["toolSpec"]["inputSchema"] == {"json": schema}
    stream = sdk.chat.completions.create(
        model="claude", messages=USER, response_format={"type": "json_object"}, stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert orjson.loads(text) == {"answer": "fake"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    with pytest.raises(openai.BadRequestError) as caught:  # forcing one tool would forbid the others
        sdk.chat.completions.create(
            model="claude", messages=USER, tools=[WEATHER], response_format={"type": "json_object"}
        )
    assert caught.value.body["param"] == "response_format"


def test_session_credentials_and_credentials_from_the_environment(sdk, fakes):
    aws = fakes[0]
    sdk.chat.completions.create(model="session", messages=USER)
    assert aws.requests[-1].headers["x-amz-security-token"] == SESSION_KEY.session_token
    sdk.chat.completions.create(model="from-env", messages=USER)
    assert ACCESS_KEY_ID in aws.requests[-1].headers["authorization"]
    assert aws.refused == []


@pytest.mark.parametrize(
    "turn", [Turn(bad_crc_at=3, chunk_delay_s=0.05), Turn(cut_after=3, chunk_delay_s=0.05)]
)
def test_a_stream_broken_after_the_first_token_ends_with_an_error_event(sdk, fakes, turn):
    fakes[0].default = turn
    got = ""
    with pytest.raises(openai.APIError, match="interrupted|ended early"):
        for chunk in sdk.chat.completions.create(model="claude", messages=USER, stream=True):
            got += chunk.choices[0].delta.content or ""
    assert got.startswith("Hello")


def test_a_bad_crc_before_the_first_token_fails_over(sdk, fakes):
    fakes[0].script(Turn(bad_crc_at=0))
    stream = sdk.chat.completions.with_raw_response.create(model="claude-or-gpt", messages=USER, stream=True)
    assert stream.headers["x-llm-deployment"] == "gpt-fallback"
    assert "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)


def test_responses_api_through_bedrock(sdk, fakes):
    response = sdk.responses.create(model="claude", input="Say hello", store=False)
    assert response.output_text == "Hello from the fake Bedrock."
    assert fakes[0].requests[-1].json["messages"] == [{"role": "user", "content": [{"text": "Say hello"}]}]
    events = [
        e.type for e in sdk.responses.create(model="claude", input="Say hello", stream=True, store=False)
    ]
    assert events[0] == "response.created" and events[-1] == "response.completed"


# -- the anthropic SDK against /v1/messages ------------------------------------------------------
def test_messages_routed_to_bedrock(claude_sdk, fakes):
    aws = fakes[0]
    aws.script(Turn(input_tokens=21, output_tokens=4, cache_read=10))
    message = claude_sdk.messages.create(
        model="claude", max_tokens=50, system="Be brief.", messages=USER, stop_sequences=["###"]
    )
    assert message.content[0].text == "Hello from the fake Bedrock."
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (21, 4)
    assert message.usage.cache_read_input_tokens == 10
    assert aws.requests[-1].json == {
        "messages": [{"role": "user", "content": [{"text": "Say hello"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 50, "stopSequences": ["###"]},
    }


def test_messages_stream_routed_to_bedrock(claude_sdk, fakes):
    fakes[0].default = Turn(
        text="Sure, checking.", tool_uses=[("get_weather", {"city": "Kyiv"})], split_frames=True
    )
    with claude_sdk.messages.stream(
        model="claude", max_tokens=50, messages=USER, tools=[CLAUDE_WEATHER]
    ) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[0].text == "Sure, checking." and final.content[1].input == {"city": "Kyiv"}
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 7)


def test_messages_with_tools_over_two_turns(claude_sdk, fakes):
    aws = fakes[0]
    aws.script(Turn(text="", tool_uses=[("get_weather", {"city": "Lima"})]))
    message = claude_sdk.messages.create(
        model="claude",
        max_tokens=50,
        messages=USER,
        tools=[CLAUDE_WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert message.stop_reason == "tool_use" and message.content[0].input == {"city": "Lima"}
    assert aws.requests[-1].json["toolConfig"]["toolChoice"] == {"tool": {"name": "get_weather"}}
    use = message.content[0]
    follow = claude_sdk.messages.create(
        model="claude",
        max_tokens=50,
        tools=[CLAUDE_WEATHER],
        messages=[
            *USER,
            {"role": "assistant", "content": [b.model_dump() for b in message.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Cloudy"}],
            },
        ],
    )
    assert follow.stop_reason == "end_turn"
    assert aws.requests[-1].json["messages"][1:] == [
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": use.id, "name": "get_weather", "input": {"city": "Lima"}}}],
        },
        {"role": "user", "content": [{"toolResult": {"toolUseId": use.id, "content": [{"text": "Cloudy"}]}}]},
    ]


def test_no_credential_in_the_server_log(proxy):
    log = proxy.log()
    assert SECRET_ACCESS_KEY not in log and ACCESS_KEY_ID not in log and SESSION_KEY.session_token not in log


# -- bedrock_error, in process -----------------------------------------------------------------
class _Headers(dict):
    def get(self, key, default=None):  # type: ignore[override]
        return super().get(key.lower(), default)


def _bedrock_error(status: int, name: str, message: str, **headers: str):
    from asgi_llm.config.schema import Deployment
    from asgi_llm.providers.aws import AwsCredentials
    from asgi_llm.providers.bedrock import bedrock_error

    deployment = Deployment.model_validate({"id": "b", "provider": "bedrock", "model": "m"})
    errortype = {"x-amzn-errortype": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return bedrock_error(
        status,
        orjson.dumps({"message": message}),
        _Headers({**errortype, **headers}),
        deployment,
        AwsCredentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY, "tok-secret"),
    )


@pytest.mark.parametrize(
    "status,name,retryable,client_status,error_type",
    [
        (429, "ThrottlingException", True, 429, "rate_limit_error"),
        (429, "ModelNotReadyException", True, 429, "rate_limit_error"),
        (400, "ServiceQuotaExceededException", True, 429, "rate_limit_error"),
        (503, "ServiceUnavailableException", True, 503, "upstream_error"),
        (424, "ModelErrorException", True, 502, "upstream_error"),
        (408, "ModelTimeoutException", True, 504, "upstream_error"),
        (400, "ValidationException", False, 400, "invalid_request_error"),
        (404, "ResourceNotFoundException", False, 404, "invalid_request_error"),
        (403, "AccessDeniedException", True, 502, "upstream_error"),
        (403, "UnrecognizedClientException", True, 502, "upstream_error"),
        (403, "ExpiredTokenException", True, 502, "upstream_error"),
    ],
)
def test_bedrock_errors_map_by_exception_name(status, name, retryable, client_status, error_type):
    error = _bedrock_error(status, name, "Bedrock says no.", **{"retry-after": "2"})
    assert (error.retryable, error.status, error.type) == (retryable, client_status, error_type)
    assert error.message.endswith("Bedrock says no.")
    if client_status == 429:
        assert error.code == "rate_limit_exceeded" and error.retry_after == 2
    elif client_status < 500:
        assert error.code == name and error.message == "Bedrock says no."
    elif status == 403:  # the deployment's credentials refused: never a 403 to the client
        assert error.code == "upstream_auth_failed" and f"(HTTP 403 {name})" in error.message


def test_credentials_in_a_bedrock_message_never_reach_the_client():
    error = _bedrock_error(
        403, "InvalidSignatureException", f"Credential={ACCESS_KEY_ID}/x {SECRET_ACCESS_KEY} tok-secret"
    )
    assert ACCESS_KEY_ID not in error.message and SECRET_ACCESS_KEY not in error.message
    assert "tok-secret" not in error.message and not find_secrets(error.message)


# -- the usage record, in process --------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
async def test_the_usage_record_is_what_bedrock_reported(fakes, asgi_client, stream):
    """ctx.usage (what limits, budgets, metrics and cost read): every input token, cache reads
    and writes included, with the reads told apart, exactly as the fake reported them."""
    from asgi_llm import Config, build_app

    aws = fakes[0]
    aws.script(Turn(input_tokens=100, output_tokens=20, cache_read=300, cache_write=40, split_frames=stream))
    app = build_app(
        Config.from_dict({"models": [{"name": "claude", "deployments": [bedrock("in-process", aws)]}]})
    )
    seen = []

    async def keep_state(scope, receive, send):
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        scope["state"] = state = {}
        await app(scope, receive, send)
        seen.append(state["llm"])

    client = asgi_client(app=keep_state)
    payload = {"model": "claude", "messages": USER, "stream": stream}
    response = await client.post("/v1/chat/completions", json=payload)
    assert response.status_code == 200
    usage = seen[0].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_prompt_tokens) == (440, 20, 300)
