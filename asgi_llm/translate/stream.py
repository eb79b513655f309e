"""Streams, both ways: Anthropic Messages events <-> OpenAI chat.completion.chunk SSE.

Both translators are incremental: bytes in as they arrive (split anywhere), bytes out at
once, nothing held back but a partial event. One JSON parse per event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from asgi_llm.sse import DONE, SSEDecoder, SSEError, encode_event, event_data
from asgi_llm.translate.response import (
    anthropic_usage,
    finish_reason_for,
    message_id,
    openai_usage,
    stop_reason_for,
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
    the client is the first token and an early error event can still fail over.
    After it: `usage` (prompt, completion), `finish_reason`, `hint` (native stop reason,
    stop sequence and input tokens), `chunks` (chunks emitted) and `done`.
    """

    __slots__ = (
        "done",
        "usage",
        "finish_reason",
        "hint",
        "chunks",
        "_decoder",
        "_include_usage",
        "_head",
        "_tools",
        "_role_sent",
        "_usage",
    )

    def __init__(self, *, created: int, include_usage: bool) -> None:
        self.done = False
        self.usage: tuple[int, int] | None = None
        self.finish_reason: str | None = None
        self.hint: dict[str, Any] = {}
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
            if delta.get("type") == "text_delta" and delta.get("text"):
                self._emit(out, {"content": delta["text"]})
            elif delta.get("type") == "input_json_delta" and delta.get("partial_json"):
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
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "text" and block.get("text"):
                self._emit(out, {"content": block["text"]})
            elif block.get("type") == "tool_use" and isinstance(event.get("index"), int):
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
        elif kind == "message_start":
            message = event.get("message") or {}
            if isinstance(message.get("id"), str):
                self._head["id"] = message["id"]
            if isinstance(message.get("model"), str):
                self._head["model"] = message["model"]
            self._add_usage(message.get("usage"))
            self.hint["input_tokens"] = self._usage.get("input_tokens")
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            self.hint["stop_reason"] = delta.get("stop_reason")
            self.hint["stop_sequence"] = delta.get("stop_sequence")
            self.finish_reason = finish_reason_for(delta.get("stop_reason"))
            self._add_usage(event.get("usage"))
            usage = openai_usage(self._usage)
            if usage is not None:
                self.usage = (usage["prompt_tokens"], usage["completion_tokens"])
        elif kind == "message_stop":
            self._finish(out)
        elif kind == "error":
            error = event.get("error") or {}
            raise UpstreamErrorEvent(f"the upstream stream reported {str(error.get('type'))[:40]}")
        # ping, content_block_stop, thinking and signature deltas: nothing for the client.

    def _add_usage(self, usage: Any) -> None:
        # message_delta counts are cumulative: they replace, and absent ones keep their value.
        if isinstance(usage, dict):
            self._usage.update((k, v) for k, v in usage.items() if type(v) is int)

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


def _anthropic_event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class ChatToMessagesStream:
    """OpenAI chunks in, Anthropic events out (answers to `POST /v1/messages`).

    `hint()` is asked at message_start and at the end, so an Anthropic upstream's own input
    tokens, stop reason and stop sequence come back; without one, message_start reports
    `input_tokens` (an estimate) and message_delta the exact count from the usage chunk.
    """

    __slots__ = (
        "done",
        "hint",
        "_decoder",
        "_input_tokens",
        "_started",
        "_blocks",
        "_open",
        "_tools",
        "_finish",
        "_usage",
    )

    def __init__(
        self, *, input_tokens: int = 0, hint: Callable[[], dict[str, Any] | None] = lambda: None
    ) -> None:
        self.done = False
        self.hint = hint
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
        hint = self.hint()
        hinted = hint.get("input_tokens") if hint else None
        message: dict[str, Any] = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model") if isinstance(chunk.get("model"), str) else "",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": hinted if type(hinted) is int else self._input_tokens,
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
        reason, sequence = stop_reason_for(self._finish, self.hint())
        usage = anthropic_usage(self._usage)
        if self._usage is None:
            del usage["input_tokens"]  # unknown: message_start's value stands
        out.append(
            _anthropic_event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": sequence},
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
        return _anthropic_event(
            "error", {"type": "error", "error": {"type": "api_error", "message": message}}
        )
