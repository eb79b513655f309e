"""Streams, both ways: Anthropic Messages events <-> OpenAI chat.completion.chunk SSE.

Both translators are incremental: bytes in as they arrive (split anywhere), bytes out at
once, nothing held back but a partial event. One JSON parse per event.
"""

from __future__ import annotations

from typing import Any

import orjson

from asgi_llm.sse import DONE, SSEDecoder, SSEError, encode_event, event_data
from asgi_llm.translate.response import (
    anthropic_usage,
    finish_reason_for,
    message_id,
    openai_usage,
    stop_reason_for,
    thinking_entry,
)

_DONE_EVENT = DONE + b"\n\n"


class UpstreamErrorEvent(SSEError):
    """An Anthropic stream said `event: error`: the stream failed (no `[DONE]` follows)."""


def _parse(data: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise SSEError("an event that is not JSON") from None
    if not isinstance(value, dict):
        raise SSEError("an event that is not a JSON object")
    return value


class MessagesToChatStream:
    """Anthropic SSE in, OpenAI chunks out (`provider: anthropic` deployments).

    The role goes out with the first content, not at message_start, so the first byte to
    the client is the first token and an early error event can still fail over. Thinking
    goes out as `reasoning_content` deltas, and each thinking block, once whole, as one
    `thinking_blocks` delta with its signature (a client sends it back on its next turn).
    After it: `usage` (Anthropic's usage object, set once message_delta said the whole of
    it), `start_usage` (what message_start said), `finish_reason`, `chunks` (chunks emitted)
    and `done`.
    """

    __slots__ = (
        "done",
        "usage",
        "start_usage",
        "finish_reason",
        "chunks",
        "_decoder",
        "_include_usage",
        "_head",
        "_tools",
        "_thinking",
        "_role_sent",
        "_usage",
    )

    def __init__(self, *, created: int, include_usage: bool) -> None:
        self.done = False
        self.usage: dict[str, Any] | None = None
        self.start_usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.chunks = 0
        self._decoder = SSEDecoder()
        self._include_usage = include_usage
        self._head: dict[str, Any] = {
            "id": "msg_unknown",
            "object": "chat.completion.chunk",
            "created": created,
            "model": "",
        }
        self._tools: dict[int, int] = {}  # Anthropic block index -> OpenAI tool_call index
        self._thinking: dict[int, dict[str, Any]] = {}  # thinking blocks being written
        self._role_sent = False
        self._usage: dict[str, Any] = {}

    def feed(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        for event in self._decoder.feed(chunk):
            data = event_data(event)
            if data is None or self.done:
                continue
            try:
                self._event(_parse(data), out)
            except (AttributeError, TypeError) as exc:  # a field of the wrong type
                raise SSEError("a malformed event") from exc
        return b"".join(out)

    def _event(self, event: dict[str, Any], out: list[bytes]) -> None:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            kind = delta.get("type")
            if kind == "text_delta" and delta.get("text"):
                self._emit(out, {"content": delta["text"]})
            elif kind == "input_json_delta" and delta.get("partial_json"):
                position = self._tools.get(event.get("index"))  # type: ignore[arg-type]
                if position is not None:
                    self._emit(
                        out,
                        {
                            "tool_calls": [
                                {"index": position, "function": {"arguments": delta["partial_json"]}}
                            ]
                        },
                    )
            elif kind in ("thinking_delta", "signature_delta"):
                block = self._thinking.get(event.get("index"))  # type: ignore[arg-type]
                if block is None:
                    return
                if kind == "signature_delta" and isinstance(delta.get("signature"), str):
                    block["signature"] = block.get("signature", "") + delta["signature"]
                elif isinstance(delta.get("thinking"), str) and delta["thinking"]:
                    block["thinking"] += delta["thinking"]
                    self._emit(out, {"reasoning_content": delta["thinking"]})
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            kind = block.get("type")
            if kind == "text" and block.get("text"):
                self._emit(out, {"content": block["text"]})
            elif kind == "tool_use" and isinstance(event.get("index"), int):
                position = self._tools[event["index"]] = len(self._tools)
                start = block.get("input")
                self._emit(
                    out,
                    {
                        "tool_calls": [
                            {
                                "index": position,
                                "id": block.get("id"),
                                "type": "function",
                                "function": {
                                    "name": block.get("name"),
                                    "arguments": orjson.dumps(start).decode() if start else "",
                                },
                            }
                        ]
                    },
                )
            elif kind == "thinking" and isinstance(event.get("index"), int):
                entry = self._thinking[event["index"]] = {"type": "thinking", "thinking": ""}
                if isinstance(block.get("thinking"), str) and block["thinking"]:
                    entry["thinking"] = block["thinking"]
                    self._emit(out, {"reasoning_content": block["thinking"]})
                if isinstance(block.get("signature"), str) and block["signature"]:
                    entry["signature"] = block["signature"]
            elif kind == "redacted_thinking":
                redacted = thinking_entry(block)
                if redacted is not None:
                    self._emit(out, {"thinking_blocks": [redacted]})
        elif kind == "content_block_stop":
            finished = self._thinking.pop(event.get("index"), None)  # type: ignore[arg-type]
            if finished is not None:
                self._emit(out, {"thinking_blocks": [finished]})
        elif kind == "message_start":
            message = event.get("message") or {}
            if isinstance(message.get("id"), str):
                self._head["id"] = message["id"]
            if isinstance(message.get("model"), str):
                self._head["model"] = message["model"]
            self._add_usage(message.get("usage"))
            self.start_usage = _copy(self._usage)
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            self.finish_reason = finish_reason_for(delta.get("stop_reason"))
            # message_start's usage is never the final one (some servers send 0/0 there).
            self._add_usage(event.get("usage"))
            self.usage = _copy(self._usage)
        elif kind == "message_stop":
            self._finish(out)
        elif kind == "error":
            error = event.get("error") or {}
            raise UpstreamErrorEvent(f"the upstream stream reported {str(error.get('type'))[:40]}")
        # ping and anything newer: nothing for the client.

    def _add_usage(self, usage: Any) -> None:
        merge_usage(self._usage, usage)

    def _emit(self, out: list[bytes], delta: dict[str, Any], finish: str | None = None) -> None:
        if not self._role_sent:
            self._role_sent = True
            delta = {"role": "assistant", **delta}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        out.append(encode_event(orjson.dumps({**self._head, "choices": [choice]})))
        self.chunks += 1

    def _finish(self, out: list[bytes]) -> None:
        self.finish_reason = self.finish_reason or "stop"
        self._emit(out, {}, self.finish_reason)
        usage = openai_usage(self._usage)
        if self._include_usage and usage is not None:
            out.append(encode_event(orjson.dumps({**self._head, "choices": [], "usage": usage})))
        out.append(_DONE_EVENT)
        self.done = True


def merge_usage(into: dict[str, Any], usage: Any) -> None:
    """Add an Anthropic stream's usage (message_start's, then message_delta's) to `into`.

    message_delta's counts are cumulative: they replace message_start's (whose output count
    is a placeholder), and an absent one keeps its value. A 0 never erases an input-side
    count said before (a server that leaves message_delta's input at 0 is not saying the
    prompt was free).
    """
    if not isinstance(usage, dict):
        return
    for name, value in usage.items():
        if type(value) is int:
            if value or name == "output_tokens" or type(into.get(name)) is not int:
                into[name] = value
        elif isinstance(value, dict):
            inner = into.get(name)
            if not isinstance(inner, dict):
                inner = into[name] = {}
            merge_usage(inner, value)


def _copy(usage: dict[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in usage.items()}


def _anthropic_event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class ChatToMessagesStream:
    """OpenAI chunks in, Anthropic events out (answers to `POST /v1/messages` that a chat
    deployment, or the cache, gave). message_start reports `input_tokens` (the proxy's
    estimate: the usage chunk comes last) and message_delta the exact counts.
    """

    __slots__ = (
        "done",
        "_decoder",
        "_input_tokens",
        "_started",
        "_blocks",
        "_open",
        "_tools",
        "_finish",
        "_usage",
    )

    def __init__(self, *, input_tokens: int = 0) -> None:
        self.done = False
        self._decoder = SSEDecoder()
        self._input_tokens = input_tokens
        self._started = False
        self._blocks = 0  # content blocks started so far
        self._open: int | None = None  # the block being written
        self._tools: dict[int, int] = {}  # OpenAI tool_call index -> block index
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None

    def feed(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        for event in self._decoder.feed(chunk):
            data = event_data(event)
            if data is None or self.done:
                continue
            if data == b"[DONE]":
                self._end(out)
                continue
            payload = _parse(data)
            if "error" in payload:
                self._error(payload["error"], out)
                continue
            try:
                self._chunk(payload, out)
            except (AttributeError, TypeError) as exc:  # a field of the wrong type
                raise SSEError("a malformed chunk") from exc
        return b"".join(out)

    def _start(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        self._started = True
        message: dict[str, Any] = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model") if isinstance(chunk.get("model"), str) else "",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self._input_tokens,
                "output_tokens": 0,
            },
        }
        out.append(_anthropic_event("message_start", {"type": "message_start", "message": message}))

    def _chunk(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        if not self._started:
            self._start(chunk, out)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            return  # a usage chunk, or a choice past the first (n is always 1 here)
        delta = choice.get("delta") or {}
        text = delta.get("content") or delta.get("refusal")
        if isinstance(text, str) and text:
            if self._open is None or self._open in self._tools.values():
                self._open_block({"type": "text", "text": ""}, out)
            out.append(
                _anthropic_event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": self._open,
                        "delta": {"type": "text_delta", "text": text},
                    },
                )
            )
        for call in delta.get("tool_calls") or ():
            self._tool_delta(call, out)
        if choice.get("finish_reason") is not None:
            self._finish = choice["finish_reason"]

    def _tool_delta(self, call: Any, out: list[bytes]) -> None:
        if not isinstance(call, dict):
            return
        position = call.get("index", 0)
        function = call.get("function") or {}
        block = self._tools.get(position)
        if block is None:
            self._open_block(
                {
                    "type": "tool_use",
                    "id": call.get("id") or f"toolu_{position}",
                    "name": function.get("name") or "",
                    "input": {},
                },
                out,
            )
            block = self._tools[position] = self._blocks - 1
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(
                _anthropic_event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": block,
                        "delta": {"type": "input_json_delta", "partial_json": arguments},
                    },
                )
            )

    def _open_block(self, block: dict[str, Any], out: list[bytes]) -> None:
        self._close_block(out)
        self._open = self._blocks
        self._blocks += 1
        out.append(
            _anthropic_event(
                "content_block_start",
                {"type": "content_block_start", "index": self._open, "content_block": block},
            )
        )

    def _close_block(self, out: list[bytes]) -> None:
        if self._open is not None:
            out.append(
                _anthropic_event("content_block_stop", {"type": "content_block_stop", "index": self._open})
            )
            self._open = None

    def _end(self, out: list[bytes]) -> None:
        if not self._started:
            self._start({}, out)
        self._close_block(out)
        usage = anthropic_usage(self._usage)
        if self._usage is None:
            del usage["input_tokens"]  # unknown: message_start's value stands
        out.append(
            _anthropic_event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason_for(self._finish), "stop_sequence": None},
                    "usage": usage,
                },
            )
        )
        out.append(_anthropic_event("message_stop", {"type": "message_stop"}))
        self.done = True

    def _error(self, error: Any, out: list[bytes]) -> None:
        message = error.get("message") if isinstance(error, dict) else None
        out.append(self.fail(message if isinstance(message, str) else "The upstream stream failed."))

    def fail(self, message: str) -> bytes:
        """End the stream as failed: Anthropic's error event, and nothing after it."""
        if self.done:
            return b""
        self.done = True
        return error_event(message)


def error_event(message: str) -> bytes:
    """Anthropic's `event: error` for a stream that failed after it began."""
    return _anthropic_event("error", {"type": "error", "error": {"type": "api_error", "message": message}})
