"""A `/v1/responses` request sent to an upstream in its own Responses API (OpenAI, Azure).

The client's request goes out as it came, with the deployment's model name. A conversation
continues upstream (`previous_response_id` passed on) only when the previous turn was served
by this same deployment, natively: elsewhere the upstream does not know that id, so the
stored, provider-neutral items are sent instead, and failover across providers mid-
conversation still works. The answer is relayed event by event; usage and the final
response object are read from the terminal event on the way.
"""

from __future__ import annotations

from typing import Any

import orjson

from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext, ResponsesCall
from asgi_llm.providers.base import SSE, bad_response, usage_from
from asgi_llm.sse import SSEDecoder

# Events that end a Responses stream, carrying the whole response object.
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_TERMINAL_MARKERS = tuple(f'"type":"{name}"'.encode() for name in TERMINAL) + tuple(
    f'"type": "{name}"'.encode() for name in TERMINAL
)


def native_body(call: ResponsesCall, deployment: Deployment) -> bytes:
    request: dict[str, Any] = {**call.request, "model": deployment.model}
    previous = call.previous
    if previous is not None:
        if previous.upstream_id is not None and previous.deployment == deployment.id:
            request["previous_response_id"] = previous.upstream_id
        else:
            request.pop("previous_response_id", None)
            current = request.get("input")
            items = (
                [{"role": "user", "content": current}] if isinstance(current, str) else list(current or [])
            )
            # Our ids mean nothing upstream: the items go without them.
            request["input"] = [_without_id(item) for item in call.history] + items
    return orjson.dumps(request)


def _without_id(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "id"} if "id" in item else item


def read_native(ctx: LLMContext, deployment: Deployment, body: bytes) -> bytes:
    """A whole Responses object: relayed as it is; usage and the object kept."""
    try:
        response = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise bad_response(deployment, "not JSON") from None
    if not isinstance(response, dict) or response.get("object") != "response":
        raise bad_response(deployment, "not a response object")
    _finished(ctx, response)
    return body


def _finished(ctx: LLMContext, response: dict[str, Any]) -> None:
    ctx.usage = usage_from(response)
    status = response.get("status")
    if status == "incomplete":
        details = response.get("incomplete_details") or {}
        ctx.finish_reason = "content_filter" if details.get("reason") == "content_filter" else "length"
    elif status == "completed":
        ctx.finish_reason = "stop"
    if ctx.responses is not None:
        ctx.responses.final = response


class NativeResponsesStream:
    """Relays a Responses event stream event by event (never buffered past one event)."""

    content_type = SSE
    __slots__ = ("ctx", "done", "_decoder")

    def __init__(self, ctx: LLMContext) -> None:
        self.ctx = ctx
        self.done = False
        self._decoder = SSEDecoder()

    def feed(self, chunk: bytes) -> bytes:
        out = []
        for event in self._decoder.feed(chunk):
            if any(marker in event for marker in _TERMINAL_MARKERS):
                self._terminal(event)
            elif b"data:" in event:
                self.ctx.streamed_chunks += 1
            out.append(event + b"\n\n")
        return b"".join(out)

    def _terminal(self, event: bytes) -> None:
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                try:
                    data = orjson.loads(line[5:])
                except orjson.JSONDecodeError:
                    return
                response = data.get("response") if isinstance(data, dict) else None
                if isinstance(response, dict):
                    _finished(self.ctx, response)
                self.done = True
                return


__all__ = ["NativeResponsesStream", "native_body", "read_native"]
