"""Bedrock prompt-cache points and guardrails, through a real `asgi-llm serve` to the fake, which
checks both as Converse does (tests/fakes/bedrock_checks.py)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.fakes.bedrock import FakeBedrock, Turn
from tests.harness import ProxyServer
from tests.providers.test_bedrock import bedrock

CLAUDE_4 = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
EPHEMERAL = {"type": "ephemeral"}
POINT = {"cachePoint": {"type": "default"}}
GUARDRAIL = {"id": "gr1abc", "version": 2, "trace": "enabled", "stream_processing_mode": "async"}
BLOCKED = "Sorry, the model cannot answer this question."


@pytest.fixture(scope="module")
def aws():
    with FakeBedrock("aws-cache") as fake:
        yield fake


@pytest.fixture(scope="module")
def proxy(aws, tmp_path_factory):
    config = {
        "models": [
            {"name": "claude-4", "deployments": [bedrock("c4", aws, model=CLAUDE_4)]},
            {"name": "claude-3-5", "deployments": [bedrock("c35", aws)]},
            {"name": "guarded", "deployments": [bedrock("g", aws, model=CLAUDE_4, guardrail=GUARDRAIL)]},
        ],
    }
    with ProxyServer(config, tmp_path_factory.mktemp("bedrock-cache")) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(aws):
    aws.reset()
    aws.default = Turn()


@pytest.fixture
def sdk(proxy):
    with openai.OpenAI(base_url=proxy.base_url, api_key="sk-client", max_retries=0, timeout=20) as client:
        yield client


@pytest.fixture
def claude_sdk(proxy):
    with anthropic.Anthropic(
        base_url=proxy.root_url, api_key="sk-client", max_retries=0, timeout=20
    ) as client:
        yield client


def _cached_messages(claude_sdk: anthropic.Anthropic, model: str) -> anthropic.types.Message:
    return claude_sdk.messages.create(
        model=model,
        max_tokens=50,
        system=[{"type": "text", "text": "A long system prompt.", "cache_control": EPHEMERAL}],
        tools=[
            {
                "name": "lookup",
                "input_schema": {"type": "object", "properties": {}},
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            }
        ],
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "A long document.", "cache_control": EPHEMERAL}],
            }
        ],
    )


def test_messages_cache_control_becomes_cache_points_and_cache_usage_comes_back(claude_sdk, aws):
    aws.script(Turn(input_tokens=5, output_tokens=3, cache_read=1200, cache_write=40))
    message = _cached_messages(claude_sdk, "claude-4")
    sent = aws.requests[-1].json
    assert sent["system"] == [{"text": "A long system prompt."}, POINT]
    assert sent["messages"][0]["content"] == [{"text": "A long document."}, POINT]
    assert sent["toolConfig"]["tools"][1] == {"cachePoint": {"type": "default", "ttl": "1h"}}
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (
        5,
        1200,
        40,
    )


def test_a_model_without_prompt_caching_gets_no_cache_points(claude_sdk, aws):
    message = _cached_messages(claude_sdk, "claude-3-5")  # the fake refuses points for it
    assert message.content[0].text == "Hello from the fake Bedrock."
    assert "cachePoint" not in str(aws.requests[-1].json)


def test_chat_content_parts_marked_for_caching_in_a_stream(sdk, aws):
    aws.script(Turn(cache_read=900))
    stream = sdk.chat.completions.create(
        model="claude-4",
        stream=True,
        stream_options={"include_usage": True},
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "Rules.", "cache_control": EPHEMERAL}]},  # type: ignore[typeddict-unknown-key]
            {"role": "user", "content": "Hi"},
        ],
    )
    chunks = list(stream)
    assert aws.requests[-1].json["system"] == [{"text": "Rules."}, POINT]
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details.cached_tokens == 900


def test_a_bad_mark_is_a_400_naming_it(sdk, aws):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model="claude-4",
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "x", "cache_control": {"type": "forever"}}],
                }
            ],  # type: ignore[typeddict-unknown-key]
        )
    assert caught.value.body["param"] == "messages[0].content[0].cache_control"  # type: ignore[index]
    assert aws.requests == []


def test_the_guardrail_goes_with_every_call_and_its_intervention_is_content_filter(sdk, aws):
    aws.script(Turn(text=BLOCKED, stop_reason="guardrail_intervened"))
    answer = sdk.chat.completions.create(model="guarded", messages=[{"role": "user", "content": "Hi"}])
    assert aws.requests[-1].json["guardrailConfig"] == {
        "guardrailIdentifier": "gr1abc",
        "guardrailVersion": "2",
        "trace": "enabled",
    }
    assert answer.choices[0].finish_reason == "content_filter"
    assert answer.choices[0].message.content == BLOCKED


def test_a_streamed_call_takes_the_guardrail_with_its_processing_mode(sdk, claude_sdk, aws):
    aws.default = Turn(text=BLOCKED, stop_reason="guardrail_intervened")
    chunks = list(
        sdk.chat.completions.create(
            model="guarded", stream=True, messages=[{"role": "user", "content": "Hi"}]
        )
    )
    assert aws.requests[-1].json["guardrailConfig"]["streamProcessingMode"] == "async"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    with claude_sdk.messages.stream(
        model="guarded", max_tokens=20, messages=[{"role": "user", "content": "Hi"}]
    ) as s:
        final = s.get_final_message()
    assert aws.requests[-1].json["guardrailConfig"]["trace"] == "enabled"
    assert final.stop_reason == "refusal"
