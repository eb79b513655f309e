"""What the fake Bedrock checks in cache points and guardrail configs, as Converse does.

Shapes from Bedrock Runtime's API model (botocore's bedrock-runtime service-2.json):
`CachePointBlock` is `{"type": "default", "ttl"?: "5m" | "1h"}` and a member of
`SystemContentBlock`, `ContentBlock` and `Tool` (each a union: one key); `guardrailConfig` is
`GuardrailConfiguration` for Converse and `GuardrailStreamConfiguration` (which adds
`streamProcessingMode`) for ConverseStream. Bedrock also refuses cache points for a model it
does not cache for, more than 4 of them, and one with nothing before it to cache.
"""

from __future__ import annotations

import re
from typing import Any

MAX_CACHE_POINTS = 4
# Models Bedrock refuses cache points for (the ones the tests use that it does not cache).
_UNCACHED = re.compile(r"anthropic\.claude-3-(5-sonnet|haiku|sonnet|opus)|cohere\.|meta\.")
_GUARDRAIL_ID = re.compile(
    r"^([a-z0-9]+|arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+)$"
)
_GUARDRAIL_VERSION = re.compile(r"^([1-9][0-9]{0,7}|DRAFT)$")
_TRACES = ("enabled", "disabled", "enabled_full")
_TOOL_KINDS = {"toolSpec", "systemTool", "cachePoint"}


def _point_problem(point: Any) -> str | None:
    if not isinstance(point, dict) or point.get("type") != "default" or set(point) - {"type", "ttl"}:
        return f"Malformed input request: cachePoint must be {{type: default}}, not {point!r}"
    if "ttl" in point and point["ttl"] not in ("5m", "1h"):
        return f"Malformed input request: cachePoint.ttl {point['ttl']!r} is not one of [5m, 1h]"
    return None


def cache_point_problem(payload: dict[str, Any], model: str) -> str | None:
    """What Converse would refuse in the body's cache points, or None."""
    lists: list[tuple[str, list[Any]]] = [("system", payload.get("system") or [])]
    lists += [(f"messages.{i}.content", m.get("content") or []) for i, m in enumerate(payload["messages"])]
    lists.append(("toolConfig.tools", (payload.get("toolConfig") or {}).get("tools") or []))
    count = 0
    for where, blocks in lists:
        for j, block in enumerate(blocks):
            if where == "toolConfig.tools" and (len(block) != 1 or not set(block) <= _TOOL_KINDS):
                return f"Malformed input request: {where}.{j} must hold one of {sorted(_TOOL_KINDS)}"
            if "cachePoint" not in block:
                continue
            count += 1
            problem = _point_problem(block["cachePoint"])
            if problem is not None:
                return problem
            if j == 0 or "cachePoint" in blocks[j - 1]:
                return f"{where}.{j}: a cache point must follow a block to cache"
    if count and _UNCACHED.search(model):
        return "You invoked an unsupported model or your request did not allow prompt caching."
    if count > MAX_CACHE_POINTS:
        return f"A request may hold at most {MAX_CACHE_POINTS} cache points, not {count}."
    return None


def guardrail_problem(config: Any, *, stream: bool) -> str | None:
    """What Converse (or ConverseStream) would refuse in `guardrailConfig`, or None."""
    if config is None:
        return None
    allowed = {"guardrailIdentifier", "guardrailVersion", "trace"} | (
        {"streamProcessingMode"} if stream else set()
    )
    if not isinstance(config, dict) or set(config) - allowed:
        return f"Malformed input request: guardrailConfig holds an extraneous key: {sorted(config)}"
    ident, version = config.get("guardrailIdentifier"), config.get("guardrailVersion")
    if not isinstance(ident, str) or not _GUARDRAIL_ID.match(ident):
        return f"guardrailConfig.guardrailIdentifier {ident!r} is not a guardrail id or ARN"
    if not isinstance(version, str) or not _GUARDRAIL_VERSION.match(version):
        return f"guardrailConfig.guardrailVersion {version!r} is not a version number or DRAFT"
    if config.get("trace", "disabled") not in _TRACES:
        return f"guardrailConfig.trace {config['trace']!r} is not one of {list(_TRACES)}"
    if config.get("streamProcessingMode", "sync") not in ("sync", "async"):
        return f"guardrailConfig.streamProcessingMode {config['streamProcessingMode']!r} is not sync or async"
    return None


def guardrail_trace(config: Any) -> dict[str, Any] | None:
    """The `trace` a Converse answer carries when the guardrail's trace is on."""
    if not isinstance(config, dict) or config.get("trace", "disabled") == "disabled":
        return None
    return {"guardrail": {"modelOutput": [], "inputAssessment": {config["guardrailIdentifier"]: {}}}}
