"""JSON mode on Bedrock: Converse has no `response_format`, so it is a forced tool.

`response_format: json_object` (or `json_schema`) becomes one tool, `json_response`, whose
input schema is the object wanted (any object, or the given schema), with `toolChoice` naming
it: the model must answer by calling it, and its input is the JSON. The answer's call of that
tool comes back as the message's content (JSON text), with `finish_reason: stop`, in answers
and streams alike (bedrock_answer.py, bedrock_stream.py). A request with tools of its own and
a JSON response format is refused: forcing one tool would forbid the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgi_llm.errors import InvalidRequest
from asgi_llm.translate.fields import invalid

JSON_TOOL = "json_response"
_ANY_OBJECT = {"type": "object"}


def json_mode(payload: dict[str, Any]) -> bool:
    """Whether a chat request asks for JSON (so the answer's JSON_TOOL call is its content)."""
    response_format = payload.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema")


def json_tool_config(
    payload: dict[str, Any], refuse: Callable[[str, str], InvalidRequest]
) -> dict[str, Any] | None:
    """The toolConfig that forces a JSON answer, or None for `text` (or no response_format).
    `refuse(param, detail)` is the translation's 400 for what Converse cannot say."""
    response_format = payload.get("response_format")
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind not in ("json_object", "json_schema"):
        raise invalid("response_format.type", "must be text, json_object or json_schema")
    if payload.get("tools"):
        raise refuse("response_format", " together with tools (Bedrock's JSON mode is one forced tool)")
    spec: dict[str, Any] = {
        "name": JSON_TOOL,
        "description": "Give the answer as this tool's input: the JSON object the user asked for.",
        "inputSchema": {"json": _ANY_OBJECT},
    }
    if kind == "json_schema":
        schema_spec = response_format.get("json_schema")
        schema = schema_spec.get("schema") if isinstance(schema_spec, dict) else None
        if not isinstance(schema, dict):
            raise invalid("response_format.json_schema.schema", "is required", "missing_required_parameter")
        if schema.get("type", "object") != "object":
            raise refuse("response_format.json_schema.schema", " (a JSON mode answer is an object)")
        spec["inputSchema"] = {"json": schema}
        description = schema_spec.get("description")
        if isinstance(description, str) and description:
            spec["description"] = description
    return {"tools": [{"toolSpec": spec}], "toolChoice": {"tool": {"name": JSON_TOOL}}}


__all__ = ["JSON_TOOL", "json_mode", "json_tool_config"]
