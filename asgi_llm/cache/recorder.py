"""Recorder: copies an answer aside while it passes to the client, never holding it back.

Only a complete success becomes an entry: status 200, not cut, not failed, not filtered,
not empty, not larger than the entry limit (THREATS C3). Stream events are kept as raw
bytes while they flow and parsed once, after the last byte went out.
"""

from __future__ import annotations

from typing import Any

import orjson

from asgi_llm.cache.replay import StreamAssembler, finish_reasons, has_content
from asgi_llm.context import LLMContext
from asgi_llm.sse import SSEDecoder, SSEError, event_data
from asgi_llm.types import Message, Send


class Recorder:
    __slots__ = ("_decoder", "chunks", "ctx", "done", "events", "limit", "ok", "size", "streaming")

    def __init__(self, ctx: LLMContext, limit: int) -> None:
        self.ctx = ctx
        self.limit = limit
        self.size = 0
        self.ok = True
        self.streaming = False
        self.done = False  # saw `[DONE]`
        self.chunks: list[bytes] = []
        self.events: list[bytes] = []
        self._decoder = SSEDecoder(max_event_bytes=limit)

    def wrap(self, send: Send) -> Send:
        async def recording_send(message: Message) -> None:
            if self.ok:
                self._see(message)
            await send(message)

        return recording_send

    def _see(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if message.get("status") != 200:
                self.ok = False
                return
            for name, value in message.get("headers", ()):
                if name.lower() == b"content-type":
                    self.streaming = value.startswith(b"text/event-stream")
            return
        if kind != "http.response.body":
            return
        body = message.get("body", b"")
        self.size += len(body)
        if self.size > self.limit:
            self._give_up()
            return
        if not self.streaming:
            self.chunks.append(body)
            return
        try:
            for event in self._decoder.feed(body):
                data = event_data(event)
                if data is None:
                    continue
                if data == b"[DONE]":
                    self.done = True
                else:
                    self.events.append(data)
        except SSEError:
            self._give_up()

    def _give_up(self) -> None:
        self.ok = False
        self.chunks.clear()
        self.events.clear()

    def result(self) -> dict[str, Any] | None:
        """The answer as a storable response object, or None when it must not be stored."""
        ctx = self.ctx
        if (
            not self.ok
            or not ctx.completed
            or ctx.disconnected
            or ctx.status != 200
            or ctx.stream_failure
            # An upstream's own Responses or Messages API answered: those bytes are not the
            # chat form the cache keeps and replays.
            or (ctx.responses is not None and ctx.responses.native)
            or (ctx.messages is not None and ctx.messages.native)
        ):
            return None
        try:
            response = self._stream_result() if self.streaming else self._body_result()
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
            return None
        if response is None or "error" in response:
            return None
        if "content_filter" in finish_reasons(response) or ctx.finish_reason == "content_filter":
            return None
        return response if has_content(ctx.endpoint, response) else None

    def _body_result(self) -> dict[str, Any] | None:
        chunks, parsed = self.chunks, self.ctx.parsed_answer
        if parsed is not None and len(chunks) == 1 and chunks[0] is parsed[0]:
            return parsed[1]  # the provider parsed these very bytes
        data = orjson.loads(b"".join(chunks))
        return data if isinstance(data, dict) else None

    def _stream_result(self) -> dict[str, Any] | None:
        if not self.done:
            return None
        assembler = StreamAssembler(self.ctx.endpoint)
        for data in self.events:
            chunk = orjson.loads(data)
            if not isinstance(chunk, dict) or "error" in chunk:
                return None
            assembler.add(chunk)
        usage = self.ctx.usage
        as_dict = (
            None
            if usage is None
            else {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            }
        )
        return assembler.result(as_dict)


__all__ = ["Recorder"]
