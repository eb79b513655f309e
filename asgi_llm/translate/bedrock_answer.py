"""Bedrock Converse answers -> OpenAI chat completions (non-streamed), as pure functions.

Prompt-cache reads and writes count in `prompt_tokens`, as OpenAI counts them, and are told
apart in `prompt_tokens_details` (`cached_tokens`, `cache_write_tokens`), as for Anthropic.
"""

from __future__ import annotations

from typing import Any

import orjson

from asgi_llm.translate.fields import chat_tool_call

FINISH_FOR_STOP: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def finish_reason_for(stop_reason: Any, *, json_mode: bool = False) -> str:
    """OpenAI's finish reason; in JSON mode the forced tool's call is the answer: `stop`."""
    reason = FINISH_FOR_STOP.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    return "stop" if json_mode and reason == "tool_calls" else reason


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """Converse usage -> OpenAI usage. Converse's inputTokens are the fresh ones; cache reads
    and writes are input too, so they count in prompt_tokens and are named in the details."""
    if not isinstance(usage, dict):
        return None
    values = [
        usage.get(k) or 0
        for k in ("inputTokens", "cacheWriteInputTokens", "cacheReadInputTokens", "outputTokens")
    ]
    if any(type(v) is not int or v < 0 for v in values) or "inputTokens" not in usage:
        return None
    fresh, written, read, output = values
    prompt = fresh + written + read
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
    }
    details = {}
    if read:
        details["cached_tokens"] = read
    if written:
        details["cache_write_tokens"] = written
    if details:
        out["prompt_tokens_details"] = details
    return out


def converse_to_completion(
    answer: dict[str, Any], *, ident: str, model: str, created: int, json_tool: str | None = None
) -> dict[str, Any]:
    """A Converse answer as a chat.completion; ValueError when it is not one. With `json_tool`
    (JSON mode, bedrock_json.py), that tool's call is the content, as JSON text."""
    output = answer.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        raise ValueError("no output message")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, dict):
            raise ValueError("a content block that is not an object")
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            if not isinstance(use.get("toolUseId"), str) or not isinstance(use.get("name"), str):
                raise ValueError("a toolUse block without toolUseId or name")
            if json_tool is not None and use["name"] == json_tool:
                texts.append(orjson.dumps(use.get("input", {})).decode())
                continue
            calls.append(chat_tool_call(use["toolUseId"], use["name"], use.get("input", {})))
        # reasoningContent, citations, images: nothing a chat completion shows.
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if calls:
        reply["tool_calls"] = calls
    completion: dict[str, Any] = {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason_for(answer.get("stopReason"), json_mode=json_tool is not None),
            }
        ],
    }
    usage = chat_usage(answer.get("usage"))
    if usage is not None:
        completion["usage"] = usage
    return completion


__all__ = [
    "FINISH_FOR_STOP",
    "chat_usage",
    "converse_to_completion",
    "finish_reason_for",
]
