"""Gemini `generateContent` answers -> OpenAI chat completions (non-streamed), as pure
functions; the finish reasons and usage the stream translator shares.
"""

from __future__ import annotations

from typing import Any

from asgi_llm.translate.fields import chat_tool_call
from asgi_llm.translate.gemini_ids import call_id
from asgi_llm.translate.gemini_logprobs import openai_logprobs

# Gemini's finishReason -> OpenAI's finish_reason. Every block for safety, recitation or
# prohibited content is a content filter; what is not listed is a plain stop.
FINISH_REASONS: dict[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}


def finish_reason(reason: Any, *, called: bool) -> str:
    """Gemini says STOP after function calls too; OpenAI says tool_calls."""
    mapped = FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "tool_calls" if called and mapped == "stop" else mapped


def usage_numbers(metadata: Any) -> tuple[int, int, int, int] | None:
    """(prompt, completion, cached, reasoning) as `Usage` counts them: cached tokens are part
    of the prompt (Gemini's promptTokenCount includes the cached content), and thoughts,
    which Gemini counts apart from the candidates, are part of the completion."""
    if not isinstance(metadata, dict):
        return None
    values = [
        metadata.get(name) or 0
        for name in (
            "promptTokenCount",
            "toolUsePromptTokenCount",
            "candidatesTokenCount",
            "thoughtsTokenCount",
            "cachedContentTokenCount",
        )
    ]
    if any(type(v) is not int or v < 0 for v in values):
        return None
    prompt, tool_prompt, candidates, thoughts, cached = values
    return prompt + tool_prompt, candidates + thoughts, cached, thoughts


def openai_usage(metadata: Any) -> dict[str, Any] | None:
    numbers = usage_numbers(metadata)
    if numbers is None:
        return None
    prompt, completion, cached, reasoning = numbers
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


def read_parts(parts: Any, response_id: str | None, first_call: int = 0) -> tuple[str, list[dict[str, Any]]]:
    """(text, tool calls) of a candidate's parts; thought summaries are not shown."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict) or part.get("thought") is True:
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        call = part.get("functionCall")
        if isinstance(call, dict):
            if not isinstance(call.get("name"), str):
                raise ValueError("a functionCall without a name")
            signature = part.get("thoughtSignature")
            tool_id = call_id(
                response_id, first_call + len(calls), signature if isinstance(signature, str) else None
            )
            calls.append(chat_tool_call(tool_id, call["name"], call.get("args") or {}))
    return "".join(texts), calls


def _choice(
    index: int, text: str, calls: list[dict[str, Any]], finish: str, logprobs: dict[str, Any] | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {"index": index, "message": message, "logprobs": logprobs, "finish_reason": finish}


def completion_id(response: dict[str, Any]) -> str:
    ident = response.get("responseId")
    return f"chatcmpl-{ident}" if isinstance(ident, str) and ident else "chatcmpl-gemini"


def gemini_to_completion(response: dict[str, Any], *, model: str, created: int) -> dict[str, Any]:
    """A `generateContent` response as a chat.completion; ValueError when it is not one.
    A prompt blocked before any candidate is an empty answer ended by content_filter."""
    candidates = response.get("candidates")
    if candidates is not None and not isinstance(candidates, list):
        raise ValueError("candidates is not a list")
    response_id = response.get("responseId") if isinstance(response.get("responseId"), str) else None
    choices: list[dict[str, Any]] = []
    if candidates:
        # One choice per candidate (`n` asked for candidateCount), in their index's order; call
        # ids are numbered across them, so each is unique in the answer.
        calls_so_far = 0
        for position, candidate in enumerate(candidates):
            if not isinstance(candidate, dict):
                raise ValueError("a candidate is not an object")
            parts = (candidate.get("content") or {}).get("parts")
            text, calls = read_parts(parts, response_id, calls_so_far)
            calls_so_far += len(calls)
            index = candidate.get("index", position)
            finish = finish_reason(candidate.get("finishReason"), called=bool(calls))
            logprobs = openai_logprobs(candidate.get("logprobsResult"))
            choices.append(_choice(index if type(index) is int else position, text, calls, finish, logprobs))
        choices.sort(key=lambda choice: choice["index"])
    elif isinstance(response.get("promptFeedback"), dict) and response["promptFeedback"].get("blockReason"):
        choices.append(_choice(0, "", [], "content_filter"))
    else:
        raise ValueError("no candidates")
    completion: dict[str, Any] = {
        "id": completion_id(response),
        "object": "chat.completion",
        "created": created,
        "model": response.get("modelVersion") if isinstance(response.get("modelVersion"), str) else model,
        "choices": choices,
    }
    usage = openai_usage(response.get("usageMetadata"))
    if usage is not None:
        completion["usage"] = usage
    return completion


__all__ = [
    "FINISH_REASONS",
    "completion_id",
    "finish_reason",
    "gemini_to_completion",
    "openai_usage",
    "read_parts",
    "usage_numbers",
]
