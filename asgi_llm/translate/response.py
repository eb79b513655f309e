"""Anthropic messages <-> OpenAI chat completions (non-streamed answers), as pure functions.

Thinking blocks reach chat clients the way OpenAI-compatible servers show reasoning
(`reasoning_content`), with the blocks themselves, signatures included, in `thinking_blocks`
so a client can send them back on its next turn. Prompt-cache reads and writes count in
`prompt_tokens`, as OpenAI counts them, and are told apart in `prompt_tokens_details`.
"""

from __future__ import annotations

from typing import Any

import orjson

from asgi_llm.translate.fields import chat_tool_call

FINISH_FOR_STOP: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
STOP_FOR_FINISH: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason_for(stop_reason: Any) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_FOR_STOP.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def stop_reason_for(finish_reason: Any) -> str:
    """The Anthropic stop reason for a chat finish reason (`end_turn` for any other)."""
    return STOP_FOR_FINISH.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def _count(usage: dict[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if type(value) is int and value > 0 else 0


def cache_writes(usage: dict[str, Any]) -> tuple[int, int]:
    """(all prompt-cache writes, of which 1-hour ones) of an Anthropic usage object.

    `cache_creation_input_tokens` is the total; `cache_creation` splits it by TTL. A server
    that gives only the split (or only the total: the 5-minute default) is read either way.
    """
    split = usage.get("cache_creation")
    five = hour = 0
    if isinstance(split, dict):
        five = _count(split, "ephemeral_5m_input_tokens")
        hour = _count(split, "ephemeral_1h_input_tokens")
    total = _count(usage, "cache_creation_input_tokens") or five + hour
    return total, min(hour, total)


def openai_usage(usage: Any) -> dict[str, Any] | None:
    """Anthropic usage -> OpenAI usage. Cache reads and writes are input too, so they count
    in prompt_tokens, and `prompt_tokens_details` tells them apart (`cached_tokens`,
    `cache_write_tokens`)."""
    if not isinstance(usage, dict):
        return None
    values = [usage.get(k) or 0 for k in ("input_tokens", "cache_read_input_tokens", "output_tokens")]
    if any(type(v) is not int for v in values):
        return None
    fresh, read, output = values
    written, _ = cache_writes(usage)
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


def anthropic_usage(usage: Any) -> dict[str, int]:
    """OpenAI usage -> Anthropic usage (zeros when the answer said nothing): input_tokens
    counts fresh input only, as Anthropic's does."""
    if not isinstance(usage, dict):
        return {"input_tokens": 0, "output_tokens": 0}
    prompt, output = usage.get("prompt_tokens"), usage.get("completion_tokens")
    prompt = prompt if type(prompt) is int else 0
    output = output if type(output) is int else 0
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    cached = min(_count(details, "cached_tokens"), prompt)
    written = min(_count(details, "cache_write_tokens"), prompt - cached)
    out = {"input_tokens": prompt - cached - written, "output_tokens": output}
    if cached:
        out["cache_read_input_tokens"] = cached
    if written:
        out["cache_creation_input_tokens"] = written
    return out


def thinking_entry(block: dict[str, Any]) -> dict[str, Any] | None:
    """A thinking or redacted_thinking block as `thinking_blocks` carries it (None for others)."""
    kind = block.get("type")
    if kind == "thinking" and isinstance(block.get("thinking"), str):
        entry = {"type": "thinking", "thinking": block["thinking"]}
        if isinstance(block.get("signature"), str):
            entry["signature"] = block["signature"]
        return entry
    if kind == "redacted_thinking" and isinstance(block.get("data"), str):
        return {"type": "redacted_thinking", "data": block["data"]}
    return None


def message_to_completion(message: dict[str, Any], *, created: int) -> dict[str, Any]:
    """An Anthropic message as a chat.completion; ValueError when it is not one."""
    content = message.get("content")
    if not isinstance(content, list):
        raise ValueError("no content")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind in ("thinking", "redacted_thinking"):
            entry = thinking_entry(block)
            if entry is not None:
                thinking.append(entry)
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise ValueError("a tool_use block without id or name")
            calls.append(chat_tool_call(block["id"], block["name"], block.get("input", {})))
        # server-tool blocks have no place in a chat completion: not shown.
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if thinking:
        reply["reasoning_content"] = "".join(e.get("thinking", "") for e in thinking)
        reply["thinking_blocks"] = thinking
    if calls:
        reply["tool_calls"] = calls
    completion: dict[str, Any] = {
        "id": message.get("id") if isinstance(message.get("id"), str) else "msg_unknown",
        "object": "chat.completion",
        "created": created,
        "model": message.get("model") if isinstance(message.get("model"), str) else "",
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason_for(message.get("stop_reason")) or "stop",
            }
        ],
    }
    usage = openai_usage(message.get("usage"))
    if usage is not None:
        completion["usage"] = usage
    return completion


def completion_to_message(completion: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion as an Anthropic message; ValueError when it is not one."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    reply = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(reply, dict):
        raise ValueError("no choices")
    content: list[dict[str, Any]] = []
    for entry in reply.get("thinking_blocks") or ():  # signed blocks from an Anthropic upstream
        block = thinking_entry(entry) if isinstance(entry, dict) else None
        if block is not None and (block["type"] == "redacted_thinking" or "signature" in block):
            content.append(block)
    text = reply.get("content")
    if isinstance(text, list):  # some servers answer with parts
        text = "".join(
            p.get("text", "") for p in text if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    if not text and isinstance(reply.get("refusal"), str):
        text = reply["refusal"]
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in reply.get("tool_calls") or ():
        content.append(tool_use_block(call))
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model") if isinstance(completion.get("model"), str) else "",
        "content": content,
        "stop_reason": stop_reason_for(choice.get("finish_reason") if choice else None),
        "stop_sequence": None,
        "usage": anthropic_usage(completion.get("usage")),
    }


def tool_use_block(call: Any) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ValueError("a tool call without a function name")
    arguments = function.get("arguments") or "{}"
    try:
        value = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise ValueError("tool call arguments that are not a JSON object")
    ident = call.get("id")
    return {
        "type": "tool_use",
        "id": ident if isinstance(ident, str) else "toolu_unknown",
        "name": function["name"],
        "input": value,
    }


def message_id(ident: Any) -> str:
    """Anthropic ids start with msg_: keep one that does, prefix any other."""
    if not isinstance(ident, str) or not ident:
        return "msg_unknown"
    return ident if ident.startswith("msg_") else f"msg_{ident}"
