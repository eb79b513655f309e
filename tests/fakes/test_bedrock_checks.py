"""The fake Bedrock refuses cache points and guardrail configs that Converse would refuse."""

from __future__ import annotations

import pytest

from tests.fakes.bedrock_checks import cache_point_problem, guardrail_problem

CLAUDE_4 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
POINT = {"cachePoint": {"type": "default"}}
TEXT = {"text": "x"}


def body(system=(), content=(TEXT,), tools=()):
    out = {"system": list(system), "messages": [{"role": "user", "content": list(content)}]}
    if tools:
        out["toolConfig"] = {"tools": list(tools)}
    return out


@pytest.mark.parametrize(
    "payload,model,why",
    [
        (body(system=[POINT]), CLAUDE_4, "must follow a block"),
        (body(content=[TEXT, POINT, POINT]), CLAUDE_4, "must follow a block"),
        (body(content=[TEXT, {"cachePoint": {"type": "ephemeral"}}]), CLAUDE_4, "type: default"),
        (body(content=[TEXT, {"cachePoint": {"type": "default", "ttl": "2h"}}]), CLAUDE_4, "ttl"),
        (body(tools=[{"toolSpec": {}, "cachePoint": {"type": "default"}}]), CLAUDE_4, "must hold one of"),
        (body(content=[TEXT, POINT]), "anthropic.claude-3-5-sonnet-20240620-v1:0", "unsupported model"),
        (body(content=[TEXT, POINT] * 5), CLAUDE_4, "at most 4"),
    ],
)
def test_cache_points_converse_refuses(payload, model, why):
    assert why in (cache_point_problem(payload, model) or "")


def test_cache_points_converse_takes():
    payload = body(system=[TEXT, POINT], content=[TEXT, {"cachePoint": {"type": "default", "ttl": "1h"}}])
    assert cache_point_problem(payload, CLAUDE_4) is None


@pytest.mark.parametrize(
    "config,stream,why",
    [
        (
            {"guardrailIdentifier": "g1", "guardrailVersion": "1", "streamProcessingMode": "sync"},
            False,
            "extraneous",
        ),
        ({"guardrailId": "g1", "guardrailVersion": "1"}, False, "extraneous"),
        ({"guardrailIdentifier": "G 1", "guardrailVersion": "1"}, False, "guardrailIdentifier"),
        ({"guardrailIdentifier": "g1", "guardrailVersion": 1}, False, "guardrailVersion"),
        ({"guardrailIdentifier": "g1", "guardrailVersion": "1", "trace": True}, False, "trace"),
        (
            {"guardrailIdentifier": "g1", "guardrailVersion": "1", "streamProcessingMode": "x"},
            True,
            "sync or async",
        ),
    ],
)
def test_guardrail_configs_converse_refuses(config, stream, why):
    assert why in (guardrail_problem(config, stream=stream) or "")


def test_guardrail_configs_converse_takes():
    config = {"guardrailIdentifier": "g1", "guardrailVersion": "DRAFT", "trace": "enabled_full"}
    assert guardrail_problem(config, stream=False) is None
    assert guardrail_problem({**config, "streamProcessingMode": "async"}, stream=True) is None
