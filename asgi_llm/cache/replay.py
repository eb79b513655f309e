"""One stored form for every answer, and both ways out of it.

An entry always holds the non-streamed response object. A streamed miss is folded into that
object once it ended well; a streamed hit is unfolded into valid OpenAI SSE (one content
chunk per choice, a finish chunk, the usage chunk when asked, `[DONE]`). So a hit answers a
streamed or a plain request whichever way the entry was stored.
"""

from __future__ import annotations

from typing import Any

import orjson

from asgi_llm.sse import DONE

_DONE_EVENT = DONE + b"\n\n"


class StreamAssembler:
    """Folds the chunk objects of a chat or text-completion stream into one response object."""

    __slots__ = ("choices", "endpoint", "head", "usage")

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.head: dict[str, Any] = {}
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        if not self.head:
            self.head = {k: chunk[k] for k in ("id", "created", "model", "system_fingerprint") if k in chunk}
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            into = self.choices.setdefault(index if isinstance(index, int) else 0, {})
            if self.endpoint == "chat":
                _merge(into.setdefault("message", {}), choice.get("delta") or {})
            elif isinstance(choice.get("text"), str):
                into["text"] = into.get("text", "") + choice["text"]
            logprobs = choice.get("logprobs")
            if logprobs:
                _merge(into.setdefault("logprobs", {}), logprobs)
            if choice.get("finish_reason") is not None:
                into["finish_reason"] = choice["finish_reason"]

    def result(self, usage: dict[str, Any] | None) -> dict[str, Any]:
        chat = self.endpoint == "chat"
        choices = []
        for index in sorted(self.choices):
            got = self.choices[index]
            choice: dict[str, Any] = {"index": index}
            if chat:
                message = got.get("message", {})
                message.setdefault("role", "assistant")
                message.setdefault("content", None)
                if "tool_calls" in message:
                    message["tool_calls"] = [message["tool_calls"][i] for i in sorted(message["tool_calls"])]
                choice["message"] = message
            else:
                choice["text"] = got.get("text", "")
            choice["logprobs"] = got.get("logprobs")
            choice["finish_reason"] = got.get("finish_reason")
            choices.append(choice)
        out = {**self.head, "object": "chat.completion" if chat else "text_completion", "choices": choices}
        if usage is not None or self.usage is not None:
            out["usage"] = usage if usage is not None else self.usage
        return out


def _merge(into: dict[str, Any], delta: dict[str, Any]) -> None:
    """Stream deltas: strings concatenate, lists extend, `tool_calls` merge by their index."""
    for key, value in delta.items():
        if value is None:
            continue
        if key == "tool_calls" and isinstance(value, list):
            calls = into.setdefault("tool_calls", {})
            for call in value:
                if isinstance(call, dict):
                    slot = call.get("index", len(calls))
                    target = calls.setdefault(slot, {})
                    _merge(target, {k: v for k, v in call.items() if k != "index"})
        elif isinstance(value, str) and key not in ("role", "type", "id"):
            into[key] = into.get(key, "") + value
        elif isinstance(value, list):
            into[key] = [*into.get(key, []), *value]
        elif isinstance(value, dict):
            _merge(into.setdefault(key, {}), value)
        else:
            into[key] = value


def sse_events(endpoint: str, response: dict[str, Any], include_usage: bool) -> bytes:
    """A stored response object as one OpenAI SSE body, ending in `[DONE]`."""
    chat = endpoint == "chat"
    head: dict[str, Any] = {
        k: response[k] for k in ("id", "created", "model", "system_fingerprint") if k in response
    }
    head["object"] = "chat.completion.chunk" if chat else "text_completion"
    content: list[dict[str, Any]] = []
    finish: list[dict[str, Any]] = []
    for choice in response.get("choices") or ():
        index = choice.get("index", 0)
        if chat:
            message = {k: v for k, v in (choice.get("message") or {}).items() if v is not None}
            if "tool_calls" in message:
                message["tool_calls"] = [{**call, "index": i} for i, call in enumerate(message["tool_calls"])]
            content.append(
                {"index": index, "delta": message, "logprobs": choice.get("logprobs"), "finish_reason": None}
            )
            finish.append(
                {"index": index, "delta": {}, "logprobs": None, "finish_reason": choice.get("finish_reason")}
            )
        else:
            content.append(
                {
                    "index": index,
                    "text": choice.get("text", ""),
                    "logprobs": choice.get("logprobs"),
                    "finish_reason": None,
                }
            )
            finish.append(
                {"index": index, "text": "", "logprobs": None, "finish_reason": choice.get("finish_reason")}
            )
    events = [{**head, "choices": content}, {**head, "choices": finish}]
    if include_usage and isinstance(response.get("usage"), dict):
        events.append({**head, "choices": [], "usage": response["usage"]})
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + _DONE_EVENT


def finish_reasons(response: dict[str, Any]) -> list[Any]:
    return [c.get("finish_reason") for c in response.get("choices") or () if isinstance(c, dict)]


def has_content(endpoint: str, response: dict[str, Any]) -> bool:
    """Whether an answer says anything: an empty answer is not worth serving again (C3)."""
    if endpoint == "embeddings":
        data = response.get("data")
        return isinstance(data, list) and bool(data)
    for choice in response.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if endpoint == "chat":
            message = choice.get("message") or {}
            if message.get("content") or message.get("tool_calls") or message.get("function_call"):
                return True
        elif choice.get("text"):
            return True
    return False


__all__ = ["StreamAssembler", "finish_reasons", "has_content", "sse_events"]
