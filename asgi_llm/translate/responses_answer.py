"""Chat completions -> Responses API objects (answers to `POST /v1/responses`), as pure functions.

`chat_to_response` turns a whole chat completion into the `response` object OpenAI returns;
the item and object builders here are shared with the stream translator
(`responses_stream.ChatToResponsesStream`), so a streamed answer ends with the very object a
whole one gets. `usage_from_response` reads a native Responses object's usage.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import orjson

IdFactory = Callable[[str], str]

# finish_reason -> why the response is incomplete (every other reason completes it).
INCOMPLETE_FOR_FINISH: dict[str, str] = {"length": "max_output_tokens", "content_filter": "content_filter"}
# The codes a response object's `error.code` may hold that a stream failure can carry as they
# are; any other code (`stream_interrupted`, ...) is reported there as `server_error`.
_RESPONSE_ERROR_CODES = frozenset({"server_error", "rate_limit_exceeded", "invalid_prompt"})


def new_item_id(prefix: str) -> str:
    """`msg_`, `fc_`, `fco_`, `call_` ... and 48 hex digits, as OpenAI's item ids look."""
    return f"{prefix}_{os.urandom(24).hex()}"


def status_for(finish_reason: Any) -> tuple[str, str | None]:
    """(status, incomplete reason) for a chat finish_reason."""
    reason = INCOMPLETE_FOR_FINISH.get(finish_reason) if isinstance(finish_reason, str) else None
    return ("incomplete", reason) if reason is not None else ("completed", None)


def response_error(code: str, message: str) -> dict[str, Any]:
    return {"code": code if code in _RESPONSE_ERROR_CODES else "server_error", "message": message}


def response_usage(usage: Any) -> dict[str, Any] | None:
    """Chat usage -> Responses usage; None when the answer carried none."""
    if not isinstance(usage, dict):
        return None
    prompt, output = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if type(prompt) is not int or type(output) is not int:
        return None
    total = usage.get("total_tokens")
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": _detail(usage, "prompt_tokens_details", "cached_tokens"),
            "cache_write_tokens": _detail(usage, "prompt_tokens_details", "cache_write_tokens"),
        },
        "output_tokens": output,
        "output_tokens_details": {
            "reasoning_tokens": _detail(usage, "completion_tokens_details", "reasoning_tokens")
        },
        "total_tokens": total if type(total) is int else prompt + output,
    }


def _detail(usage: dict[str, Any], group: str, name: str) -> int:
    details = usage.get(group)
    value = details.get(name) if isinstance(details, dict) else None
    return value if type(value) is int else 0


def usage_from_response(response: Any) -> tuple[int, int, int, int] | None:
    """(input, cached input, output, reasoning) tokens of a Responses object, or None."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return None
    given, output = usage.get("input_tokens"), usage.get("output_tokens")
    if type(given) is not int or type(output) is not int:
        return None
    cached = usage.get("input_tokens_details")
    cached = cached.get("cached_tokens") if isinstance(cached, dict) else None
    reasoning = usage.get("output_tokens_details")
    reasoning = reasoning.get("reasoning_tokens") if isinstance(reasoning, dict) else None
    return (
        given,
        cached if type(cached) is int else 0,
        output,
        reasoning if type(reasoning) is int else 0,
    )


def output_logprobs(content: Any) -> list[dict[str, Any]]:
    """Chat `logprobs.content` -> an output_text part's `logprobs` (bytes always a list)."""
    if not isinstance(content, list):
        return []
    return [
        {
            "token": entry["token"],
            "bytes": _bytes(entry),
            "logprob": entry.get("logprob"),
            "top_logprobs": [
                {"token": top["token"], "bytes": _bytes(top), "logprob": top.get("logprob")}
                for top in entry.get("top_logprobs") or ()
                if isinstance(top, dict) and isinstance(top.get("token"), str)
            ],
        }
        for entry in content
        if isinstance(entry, dict) and isinstance(entry.get("token"), str)
    ]


def _bytes(entry: dict[str, Any]) -> list[int]:
    given = entry.get("bytes")
    return given if isinstance(given, list) else list(entry["token"].encode())


def output_text_part(text: str, logprobs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs}


def refusal_part(refusal: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": refusal}


def message_item(item_id: str, content: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def response_object(
    request: dict[str, Any],
    *,
    response_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
    error: dict[str, Any] | None = None,
    completed_at: int | None = None,
    service_tier: Any = None,
) -> dict[str, Any]:
    """A `response` object with the request's settings echoed as OpenAI echoes them (their
    defaults filled in), in every state: in_progress, completed, incomplete, failed."""
    reasoning = _object(request.get("reasoning"))
    text = _object(request.get("text"))
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": request.get("background") is True,
        "completed_at": completed_at if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if status == "incomplete" else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "model": model,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "previous_response_id": request.get("previous_response_id"),
        "prompt_cache_key": request.get("prompt_cache_key"),
        "prompt_cache_retention": request.get("prompt_cache_retention"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": request.get("safety_identifier"),
        "service_tier": service_tier if isinstance(service_tier, str) else "default",
        "store": request.get("store") is not False,
        "temperature": _number(request.get("temperature"), 1.0),
        "text": {
            "format": text.get("format") or {"type": "text"},
            "verbosity": text.get("verbosity") or "medium",
        },
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": [_echo_tool(tool) for tool in request.get("tools") or ()],
        "top_logprobs": request.get("top_logprobs") or 0,
        "top_p": _number(request.get("top_p"), 1.0),
        "truncation": request.get("truncation") or "disabled",
        "usage": usage,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any, default: float) -> Any:
    return default if value is None else value


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.get("name"),
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
    }


def chat_to_response(
    completion: dict[str, Any],
    request: dict[str, Any],
    *,
    response_id: str,
    created_at: int,
    completed_at: int | None = None,
    new_id: IdFactory = new_item_id,
) -> dict[str, Any]:
    """The Responses object for a whole chat completion answering `request` (the Responses
    request as the client sent it); ValueError when the completion is not one.

    Output: one `message` item (its `output_text` part, then a `refusal` part if the model
    refused) unless the answer is tool calls alone, then one `function_call` item per call.
    `finish_reason: length` / `content_filter` make the response `incomplete` and its last
    item `incomplete`. `completed_at` defaults to `created_at` (pure: no clock here).
    """
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    reply = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or not isinstance(reply, dict):
        raise ValueError("no choices")
    text = reply.get("content")
    if isinstance(text, list):  # some servers answer with parts
        text = "".join(p["text"] for p in text if isinstance(p, dict) and isinstance(p.get("text"), str))
    refusal = reply.get("refusal")
    calls = reply.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ValueError("tool_calls is not a list")
    output: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    if (isinstance(text, str) and text) or not (calls or isinstance(refusal, str)):
        logprobs = choice.get("logprobs")
        logprobs = output_logprobs(logprobs.get("content") if isinstance(logprobs, dict) else None)
        content.append(output_text_part(text if isinstance(text, str) else "", logprobs))
    if isinstance(refusal, str):
        content.append(refusal_part(refusal))
    if content:
        output.append(message_item(new_id("msg"), content, "completed"))
    for call in calls:
        output.append(_call_item(call, new_id))
    status, reason = status_for(choice.get("finish_reason"))
    if status == "incomplete" and output:
        output[-1]["status"] = "incomplete"
    model = completion.get("model")
    return response_object(
        request,
        response_id=response_id,
        created_at=created_at,
        model=model if isinstance(model, str) and model else str(request.get("model", "")),
        status=status,
        output=output,
        usage=response_usage(completion.get("usage")),
        incomplete_reason=reason,
        completed_at=created_at if completed_at is None else completed_at,
        service_tier=completion.get("service_tier"),
    )


def _call_item(call: Any, new_id: IdFactory) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ValueError("a tool call without a function name")
    arguments = function.get("arguments")
    if arguments is None:
        arguments = ""
    elif not isinstance(arguments, str):  # some servers send the object itself
        arguments = orjson.dumps(arguments).decode()
    call_id = call.get("id")
    return function_call_item(
        new_id("fc"),
        call_id if isinstance(call_id, str) and call_id else new_id("call"),
        function["name"],
        arguments,
        "completed",
    )


__all__ = ["IdFactory", "chat_to_response", "new_item_id", "usage_from_response"]
