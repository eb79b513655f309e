"""The `bedrock` deployment fields: validated with errors naming the field, redacted when shown."""

from __future__ import annotations

import pytest

from asgi_llm import Config, ConfigError


def config(**deployment: object) -> dict[str, object]:
    return {"models": [{"name": "m", "deployments": [{"id": "b", "model": "x", **deployment}]}]}


def test_a_bedrock_deployment_with_keys_region_and_token_loads_and_is_redacted():
    loaded = Config.from_dict(
        config(
            provider="bedrock",
            region="eu-central-1",
            aws_access_key_id="AKIAFAKEBEDROCK00001",
            aws_secret_access_key="wJalr/bedrock-fake-secret",
            aws_session_token="FwoGZXIvYXdzEFAKE-token",
        )
    )
    shown = loaded.redacted()["models"][0]["deployments"][0]
    assert shown["region"] == "eu-central-1"
    assert [shown[k] for k in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")] == [
        "***"
    ] * 3
    assert Config.from_dict(
        config(provider="bedrock")
    ).catalog  # keys and region may come from the environment


@pytest.mark.parametrize(
    "fields,where,why",
    [
        (
            {"provider": "bedrock", "aws_access_key_id": "AKIAFAKEBEDROCK00001"},
            "aws_secret_access_key",
            "required with",
        ),
        ({"provider": "bedrock", "aws_secret_access_key": "s"}, "aws_access_key_id", "required with"),
        ({"provider": "bedrock", "aws_session_token": "t"}, "aws_session_token", "needs aws_access_key_id"),
        ({"provider": "bedrock", "region": "mars-1"}, "region", "pattern"),
        (
            {"provider": "bedrock", "aws_access_key_id": "AKIA PASTED TWICE", "aws_secret_access_key": "s"},
            "aws_access_key_id",
            "",
        ),
        ({"provider": "openai", "region": "us-east-1"}, "region", "only to provider 'bedrock'"),
        (
            {"provider": "anthropic", "aws_secret_access_key": "s"},
            "aws_secret_access_key",
            "only to provider",
        ),
    ],
)
def test_bad_bedrock_fields_are_named(fields, where, why):
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(config(**fields))
    message = str(caught.value)
    assert f"models[0].deployments[0].{where}" in message and why in message
    assert "bedrock-fake-secret" not in message


def test_a_guardrail_loads_with_a_numeric_version_as_text():
    loaded = Config.from_dict(
        config(provider="bedrock", guardrail={"id": "gr1abc", "version": 3, "trace": "enabled"})
    )
    guardrail = loaded.models[0].deployments[0].guardrail
    assert guardrail is not None and (guardrail.id, guardrail.version, guardrail.trace) == (
        "gr1abc",
        "3",
        "enabled",
    )
    arn = "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1abc"
    assert Config.from_dict(config(provider="bedrock", guardrail={"id": arn, "version": "DRAFT"}))


@pytest.mark.parametrize(
    "guardrail,where,why",
    [
        ({"id": "gr1abc"}, "guardrail.version", "required"),
        ({"version": "1"}, "guardrail.id", "required"),
        ({"id": "Not An Id", "version": "1"}, "guardrail.id", "pattern"),
        ({"id": "gr1abc", "version": "0"}, "guardrail.version", "pattern"),
        ({"id": "gr1abc", "version": "1", "trace": "loud"}, "guardrail.trace", "enabled"),
        (
            {"id": "gr1abc", "version": "1", "stream_processing_mode": "later"},
            "guardrail.stream_processing_mode",
            "sync",
        ),
        ({"id": "gr1abc", "version": "1", "blocking": True}, "guardrail.blocking", "xtra"),
    ],
)
def test_bad_guardrails_are_named(guardrail, where, why):
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(config(provider="bedrock", guardrail=guardrail))
    message = str(caught.value)
    assert f"models[0].deployments[0].{where}" in message and why in message


def test_a_guardrail_applies_only_to_bedrock():
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(config(provider="openai", guardrail={"id": "gr1abc", "version": "1"}))
    assert "models[0].deployments[0].guardrail" in str(caught.value) and "only to provider 'bedrock'" in str(
        caught.value
    )
