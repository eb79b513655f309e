"""ConverseStream events -> OpenAI chat.completion.chunk SSE, incrementally.

The binary framing is undone first (providers/aws.py); this takes each event as its type
(`:event-type`) and its JSON payload: messageStart, contentBlockStart (a tool call's id and
name), contentBlockDelta (text, or a piece of a tool call's input JSON), contentBlockStop,
messageStop (the stop reason) and metadata (usage, after messageStop: the end of the stream).
"""

from __future__ import annotations

from typing import Any

import orjson

from asgi_llm.sse import DONE, encode_event
from asgi_llm.translate.bedrock_answer import chat_usage, finish_reason_for

_DONE_EVENT = DONE + b"\n\n"


class ConverseToChatStream:
    """Converse events in, OpenAI chunks out.

    The role goes out with the first content, not at messageStart, so the first byte to the
    client is the first token and an early exception event can still fail over. After it:
    `usage` (the OpenAI usage dict), `finish_reason`, `chunks` (chunks emitted) and `done`.
    """

    __slots__ = (
        "done",
        "usage",
        "finish_reason",
        "chunks",
        "_include_usage",
        "_head",
        "_tools",
        "_role_sent",
        "_json_tool",
        "_json_blocks",
    )

    def __init__(
        self, *, ident: str, model: str, created: int, include_usage: bool, json_tool: str | None = None
    ) -> None:
        self.done = False
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.chunks = 0
        self._include_usage = include_usage
        self._head: dict[str, Any] = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._tools: dict[int, int] = {}  # contentBlockIndex -> OpenAI tool_call index
        self._role_sent = False
        self._json_tool = json_tool  # JSON mode: this tool's input is the content
        self._json_blocks: set[int] = set()  # contentBlockIndex of its calls

    def event(self, kind: str, payload: dict[str, Any]) -> bytes:
        """One event's chunks (often none); TypeError/AttributeError for a malformed payload."""
        if self.done:
            return b""
        out: list[bytes] = []
        if kind == "contentBlockDelta":
            delta = payload.get("delta") or {}
            if isinstance(delta.get("text"), str) and delta["text"]:
                self._emit(out, {"content": delta["text"]})
            elif isinstance(delta.get("toolUse"), dict):
                piece = delta["toolUse"].get("input")
                block = payload.get("contentBlockIndex")
                position = self._tools.get(block)  # type: ignore[arg-type]
                if block in self._json_blocks and isinstance(piece, str) and piece:
                    self._emit(out, {"content": piece})
                elif position is not None and isinstance(piece, str) and piece:
                    self._emit(out, {"tool_calls": [{"index": position, "function": {"arguments": piece}}]})
            # reasoningContent (text, signature), citations: nothing for a chat client.
        elif kind == "contentBlockStart":
            start = (payload.get("start") or {}).get("toolUse")
            index = payload.get("contentBlockIndex")
            if isinstance(start, dict) and isinstance(index, int) and start.get("name") == self._json_tool:
                self._json_blocks.add(index)  # its input streams as content
            elif isinstance(start, dict) and isinstance(index, int):
                position = self._tools[index] = len(self._tools)
                call = {
                    "index": position,
                    "id": start.get("toolUseId"),
                    "type": "function",
                    "function": {"name": start.get("name"), "arguments": ""},
                }
                self._emit(out, {"tool_calls": [call]})
        elif kind == "messageStop":
            self._stop(out, payload)
        elif kind == "metadata":
            if self.finish_reason is None:  # no messageStop came: end the answer here
                self._stop(out, {})
            self.usage = chat_usage(payload.get("usage"))
            if self._include_usage and self.usage is not None:
                out.append(encode_event(orjson.dumps({**self._head, "choices": [], "usage": self.usage})))
            out.append(_DONE_EVENT)
            self.done = True
        # messageStart, contentBlockStop: nothing for the client.
        return b"".join(out)

    def _stop(self, out: list[bytes], payload: dict[str, Any]) -> None:
        self.finish_reason = finish_reason_for(
            payload.get("stopReason"), json_mode=self._json_tool is not None
        )
        self._emit(out, {}, self.finish_reason)

    def _emit(self, out: list[bytes], delta: dict[str, Any], finish: str | None = None) -> None:
        if not self._role_sent:
            self._role_sent = True
            delta = {"role": "assistant", **delta}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        out.append(encode_event(orjson.dumps({**self._head, "choices": [choice]})))
        self.chunks += 1


__all__ = ["ConverseToChatStream"]
