"""`POST /v1/responses` at the exchange: the Responses request becomes a chat request, and
chat answers go out as Responses objects and events.

The exchange calls `accept_responses` once, right after parsing the body, as it does for
`/v1/messages`: auth, limits, cache and router then see an ordinary chat request with a model
name, so any deployment can serve it, and the client's send is wrapped so the answer, fresh or
cached, from any provider, goes out in the Responses form. An attempt that spoke the upstream's
own Responses API (`ctx.responses.native`) is relayed as it came; only our own stream-error
event is reworded, as a Responses `error` event. The responses layer (responses_api/, inside
auth) adds what needs the caller: the conversation of `previous_response_id`, and the store.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from asgi_llm.context import LLMContext, ResponsesCall
from asgi_llm.errors import InvalidRequest, UpstreamError
from asgi_llm.sse import SSEDecoder, SSEError, event_data
from asgi_llm.translate.responses_answer import chat_to_response
from asgi_llm.translate.responses_request import responses_to_chat
from asgi_llm.translate.responses_stream import ChatToResponsesStream, encode_event
from asgi_llm.types import Message, Scope, Send

_OUR_ERROR = b'data: {"error":'  # ProviderApp's stream_error_event


def _content_type(message: Message) -> bytes:
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-type":
            return bytes(value)
    return b""


class ResponsesResponder:
    """Per request: a 200 JSON chat answer is held whole and rewritten, a 200 chat event
    stream is rewritten event by event, a native answer and anything else pass untouched."""

    __slots__ = ("ctx", "call", "send", "_mode", "_start", "_parts", "_stream", "_decoder", "_sequence")

    def __init__(self, ctx: LLMContext, call: ResponsesCall, send: Send) -> None:
        self.ctx = ctx
        self.call = call
        self.send = send
        self._mode = "pass"
        self._start: Message | None = None
        self._parts: list[bytes] = []
        self._stream: ChatToResponsesStream | None = None
        self._decoder = SSEDecoder()
        self._sequence = -1  # the last sequence number a native stream sent

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._begin(message)
            if self._mode != "json":
                await self.send(message)
        elif kind != "http.response.body" or self._mode == "pass":
            await self.call.finalize()  # a native JSON answer: read by the provider already
            await self.send(message)
        elif self._mode == "native-sse":
            body = self._relay(message.get("body", b""))
            await self.call.finalize()
            await self.send({**message, "body": body})
        elif self._mode == "sse":
            body = self._translate_events(message.get("body", b""))
            await self.call.finalize()
            await self.send({**message, "body": body})
        else:
            self._parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._send_response()

    def _begin(self, message: Message) -> None:
        content_type = _content_type(message)
        self._parts.clear()
        if message["status"] != 200:
            self._mode = "pass"
        elif self.call.native:
            self._mode = "native-sse" if content_type.startswith(b"text/event-stream") else "pass"
        elif content_type.startswith(b"text/event-stream"):
            self._mode = "sse"
            call = self.call
            self._stream = ChatToResponsesStream(
                call.request,
                response_id=call.response_id,
                created_at=call.created_at,
                model=self._model(),
            )
        elif content_type.startswith(b"application/json"):
            self._mode, self._start = "json", message
        else:
            self._mode = "pass"

    def _model(self) -> str:
        deployment = self.ctx.deployment
        return deployment.model if deployment is not None else str(self.call.request.get("model", ""))

    # -- a native stream: relayed; its sequence numbers followed for our own error event ----
    def _relay(self, body: bytes) -> bytes:
        if body.startswith(_OUR_ERROR):
            return self._native_error(body)
        marker = body.rfind(b'"sequence_number":')
        if marker >= 0:
            digits = body[marker + 18 : marker + 30].lstrip()
            end = 0
            while end < len(digits) and digits[end : end + 1].isdigit():
                end += 1
            if end:
                self._sequence = int(digits[:end])
        return body

    def _native_error(self, body: bytes) -> bytes:
        try:
            error = orjson.loads(body[6:].strip())["error"]
        except (ValueError, KeyError, TypeError):
            error = {"message": "The upstream stream was interrupted.", "code": "stream_interrupted"}
        self._sequence += 1
        event = {
            "type": "error",
            "code": error.get("code"),
            "message": error.get("message"),
            "param": None,
            "sequence_number": self._sequence,
        }
        return encode_event(event)

    # -- a chat stream: translated ----------------------------------------------------------
    def _translate_events(self, body: bytes) -> bytes:
        stream = self._stream
        assert stream is not None
        out: list[dict[str, Any]] = []
        if not stream.started:
            out.extend(stream.start())
        try:
            events = self._decoder.feed(body)
        except SSEError:
            out.extend(stream.fail("stream_interrupted", "The upstream stream was malformed."))
            return b"".join(encode_event(event) for event in out)
        for event in events:
            data = event_data(event)
            if data is None:
                continue
            if data == b"[DONE]":
                out.extend(stream.finish(completed_at=int(time.time())))
                self.call.final = stream.response
                continue
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                out.extend(stream.fail("stream_interrupted", "The upstream stream was malformed."))
                break
            error = chunk.get("error") if isinstance(chunk, dict) else None
            if isinstance(error, dict):  # the stream was cut after its first byte
                code = error.get("code") or "stream_interrupted"
                out.extend(stream.fail(str(code), str(error.get("message") or "The stream was cut.")))
                self.call.final = stream.response  # a failed response is kept too
                break
            out.extend(stream.feed(chunk))
        return b"".join(encode_event(event) for event in out)

    # -- a whole chat answer: translated ------------------------------------------------------
    async def _send_response(self) -> None:
        start = self._start
        assert start is not None
        status = 200
        call = self.call
        try:
            completion = orjson.loads(b"".join(self._parts))
            response = chat_to_response(
                completion,
                call.request,
                response_id=call.response_id,
                created_at=call.created_at,
                completed_at=int(time.time()),
            )
            out = orjson.dumps(response)
            call.final = response
        except (ValueError, AttributeError, KeyError, TypeError):
            error = UpstreamError(
                "The upstream's answer cannot be expressed as a Responses object.",
                retryable=False,
                code="bad_upstream_response",
            )
            status = self.ctx.status = error.status
            out = error.body()
        headers = [(k, v) for k, v in start.get("headers", ()) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(out)).encode()))
        await call.finalize()
        await self.send({**start, "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": out})


def accept_responses(ctx: LLMContext, scope: Scope, send: Send) -> Send:
    """Rewrite the parsed Responses request into chat form; the send that answers in kind."""
    request = ctx.payload
    if request.get("background") is True:
        raise InvalidRequest(
            "'background' responses are not supported: ask without it (the answer streams, or comes whole).",
            param="background",
            code="unsupported_parameter",
        )
    call = ctx.responses = ResponsesCall(request)
    ctx.payload = responses_to_chat(request)
    ctx.endpoint = "chat"
    ctx.inbound_format = "responses"
    # The bytes replayed inward must say what the payload says.
    ctx.body = orjson.dumps(ctx.payload)
    return ResponsesResponder(ctx, call, send)


__all__ = ["ResponsesResponder", "accept_responses"]
