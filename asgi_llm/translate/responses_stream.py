"""Chat completion chunks -> Responses API stream events (streamed answers to `POST /v1/responses`).

Incremental and pure: decoded chunks in, event dicts out (`encode_event` frames them), one
`sequence_number` counting from 0 across the stream. Items follow each other as OpenAI sends
them: an item is done before the next one is added. The terminal event carries the object
`responses_answer.chat_to_response` builds for the same answer.
"""

from __future__ import annotations

from typing import Any

import orjson

from asgi_llm.translate.responses_answer import (
    IdFactory,
    function_call_item,
    message_item,
    new_item_id,
    output_logprobs,
    output_text_part,
    refusal_part,
    response_error,
    response_object,
    response_usage,
    status_for,
)


def encode_event(event: dict[str, Any]) -> bytes:
    """One SSE event as OpenAI frames Responses events: `event: <type>` and `data: <json>`
    (the SDKs read `data`, whose `type` repeats the name)."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


class _Inexpressible(ValueError):
    """A chunk sequence the Responses item order cannot say."""


class _Part:
    __slots__ = ("kind", "index", "pieces", "logprobs")

    def __init__(self, kind: str, index: int) -> None:
        self.kind = kind  # output_text or refusal
        self.index = index
        self.pieces: list[str] = []
        self.logprobs: list[dict[str, Any]] = []

    def final(self) -> dict[str, Any]:
        text = "".join(self.pieces)
        if self.kind == "output_text":
            return output_text_part(text, list(self.logprobs))  # a copy: events keep their own
        return refusal_part(text)


class _Message:
    __slots__ = ("index", "item_id", "parts")

    def __init__(self, index: int, item_id: str) -> None:
        self.index = index
        self.item_id = item_id
        self.parts: dict[str, _Part] = {}

    def final(self, status: str) -> dict[str, Any]:
        return message_item(self.item_id, [part.final() for part in self.parts.values()], status)


class _Call:
    __slots__ = ("index", "item_id", "call_id", "name", "pieces")

    def __init__(self, index: int, item_id: str, call_id: str, name: str) -> None:
        self.index = index
        self.item_id = item_id
        self.call_id = call_id
        self.name = name
        self.pieces: list[str] = []

    def final(self, status: str) -> dict[str, Any]:
        return function_call_item(self.item_id, self.call_id, self.name, "".join(self.pieces), status)


class ChatToResponsesStream:
    """Chat chunks in (decoded, in order, the usage chunk included), Responses events out.

    `start()` gives `response.created` and `response.in_progress`; `feed(chunk)` the item
    events; `finish()` (at `[DONE]`) closes the open item and gives `response.completed`, or
    `response.incomplete` for `finish_reason` length / content_filter. `fail(code, message)`
    ends a stream cut mid-way: the `error` event, then `response.failed` with what was produced
    (the open item `incomplete`), so a client waiting for a terminal lifecycle event gets one
    and the store keeps a failed response. A chunk sequence that cannot be said in Responses'
    item order (text after the message was closed opens a second message; a tool call's
    arguments after the next item began cannot be placed) fails the stream the same way,
    never dropping text. After it: `response` (the final object), `started`, `done`.
    """

    __slots__ = (
        "request",
        "response_id",
        "created_at",
        "new_id",
        "started",
        "done",
        "response",
        "_model",
        "_sequence",
        "_items",
        "_open",
        "_calls",
        "_finish",
        "_usage",
        "_service_tier",
    )

    def __init__(
        self,
        request: dict[str, Any],
        *,
        response_id: str,
        created_at: int,
        model: str,
        new_id: IdFactory = new_item_id,
    ) -> None:
        self.request = request
        self.response_id = response_id
        self.created_at = created_at
        self.new_id = new_id
        self.started = False
        self.done = False
        self.response: dict[str, Any] | None = None
        self._model = model
        self._sequence = 0
        self._items: list[_Message | _Call] = []
        self._open: _Message | _Call | None = None
        self._calls: dict[int, _Call] = {}  # chat tool_call index -> its item
        self._finish: Any = None
        self._usage: Any = None
        self._service_tier: Any = None

    def start(self) -> list[dict[str, Any]]:
        if self.started:
            return []
        self.started = True
        return [
            self._event("response.created", response=self._object("in_progress", [])),
            self._event("response.in_progress", response=self._object("in_progress", [])),
        ]

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if self.done:
            return []
        out = self.start()
        if not isinstance(chunk, dict):
            return out + self.fail(
                "bad_upstream_response", "The upstream sent a chunk that is not an object."
            )
        error = chunk.get("error")
        if isinstance(error, dict):  # a chat stream's own error event
            code, message = error.get("code"), error.get("message")
            return out + self.fail(
                code if isinstance(code, str) else "server_error",
                message if isinstance(message, str) else "The upstream stream failed.",
            )
        try:
            self._chunk(chunk, out)
        except _Inexpressible as exc:
            out.extend(self.fail("bad_upstream_response", str(exc)))
        except (AttributeError, TypeError, KeyError):  # a field of the wrong type
            out.extend(self.fail("bad_upstream_response", "The upstream sent a malformed chunk."))
        return out

    def finish(self, completed_at: int | None = None) -> list[dict[str, Any]]:
        """The end of the chat stream (`[DONE]`); `completed_at` defaults to `created_at`."""
        if self.done:
            return []
        out = self.start()
        if not self._items:  # nothing said: an empty message, as chat_to_response gives
            self._part(self._message(out), "output_text", out)
        status, reason = status_for(self._finish)
        self._close(out, status)
        self.response = self._object(
            status,
            [item.final("completed") for item in self._items[:-1]] + [self._items[-1].final(status)],
            usage=response_usage(self._usage),
            incomplete_reason=reason,
            completed_at=self.created_at if completed_at is None else completed_at,
        )
        out.append(self._event(f"response.{status}", response=self.response))
        self.done = True
        return out

    def fail(self, code: str, message: str) -> list[dict[str, Any]]:
        if self.done:
            return []
        out = self.start()
        out.append(self._event("error", code=code, message=message, param=None))
        output = [item.final("incomplete" if item is self._open else "completed") for item in self._items]
        self.response = self._object(
            "failed", output, usage=response_usage(self._usage), error=response_error(code, message)
        )
        out.append(self._event("response.failed", response=self.response))
        self.done = True
        return out

    # -- chunks ------------------------------------------------------------------------------
    def _chunk(self, chunk: dict[str, Any], out: list[dict[str, Any]]) -> None:
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            self._model = chunk["model"]
        if isinstance(chunk.get("service_tier"), str):
            self._service_tier = chunk["service_tier"]
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            return  # the usage chunk, or a choice past the first (n is never set)
        delta = choice.get("delta") or {}
        text = delta.get("content")
        if isinstance(text, str) and text:
            logprobs = choice.get("logprobs")
            self._text(
                "output_text", text, logprobs.get("content") if isinstance(logprobs, dict) else None, out
            )
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._text("refusal", refusal, None, out)
        for position, call in enumerate(delta.get("tool_calls") or ()):
            self._tool_delta(call, position, out)
        if choice.get("finish_reason") is not None:
            self._finish = choice["finish_reason"]

    def _text(self, kind: str, text: str, logprobs: Any, out: list[dict[str, Any]]) -> None:
        message = self._open if isinstance(self._open, _Message) else self._message(out)
        part = message.parts.get(kind) or self._part(message, kind, out)
        part.pieces.append(text)
        event: dict[str, Any] = {"item_id": message.item_id, "output_index": message.index}
        event.update(content_index=part.index, delta=text)
        if kind == "output_text":
            added = output_logprobs(logprobs)
            part.logprobs.extend(added)
            out.append(self._event("response.output_text.delta", **event, logprobs=_event_logprobs(added)))
        else:
            out.append(self._event("response.refusal.delta", **event))

    def _tool_delta(self, call: dict[str, Any], position: int, out: list[dict[str, Any]]) -> None:
        index = call.get("index")
        index = index if type(index) is int else position
        function = call.get("function") or {}
        name, arguments = function.get("name"), function.get("arguments")
        item = self._calls.get(index)
        if item is None:
            self._close(out)
            call_id = call.get("id")
            item = self._calls[index] = _Call(
                len(self._items),
                self.new_id("fc"),
                call_id if isinstance(call_id, str) and call_id else self.new_id("call"),
                name if isinstance(name, str) else "",
            )
            self._add(item, item.final("in_progress"), out)
        elif isinstance(name, str) and name and not item.name:
            item.name = name
        if not isinstance(arguments, str) or not arguments:
            return
        if item is not self._open:
            raise _Inexpressible("The upstream interleaved tool calls, which a Responses stream cannot say.")
        item.pieces.append(arguments)
        out.append(
            self._event(
                "response.function_call_arguments.delta",
                item_id=item.item_id,
                output_index=item.index,
                delta=arguments,
            )
        )

    # -- items -------------------------------------------------------------------------------
    def _message(self, out: list[dict[str, Any]]) -> _Message:
        self._close(out)
        message = _Message(len(self._items), self.new_id("msg"))
        self._add(message, message.final("in_progress"), out)
        return message

    def _part(self, message: _Message, kind: str, out: list[dict[str, Any]]) -> _Part:
        part = message.parts[kind] = _Part(kind, len(message.parts))
        out.append(
            self._event(
                "response.content_part.added",
                item_id=message.item_id,
                output_index=message.index,
                content_index=part.index,
                part=part.final(),
            )
        )
        return part

    def _add(self, item: _Message | _Call, shown: dict[str, Any], out: list[dict[str, Any]]) -> None:
        self._items.append(item)
        self._open = item
        out.append(self._event("response.output_item.added", output_index=item.index, item=shown))

    def _close(self, out: list[dict[str, Any]], status: str = "completed") -> None:
        item, self._open = self._open, None
        if item is None:
            return
        where = {"item_id": item.item_id, "output_index": item.index}
        if isinstance(item, _Call):
            arguments = "".join(item.pieces)
            out.append(self._event("response.function_call_arguments.done", **where, arguments=arguments))
        for part in item.parts.values() if isinstance(item, _Message) else ():
            final, at = part.final(), {**where, "content_index": part.index}
            if part.kind == "output_text":
                logprobs = _event_logprobs(part.logprobs)
                out.append(
                    self._event("response.output_text.done", **at, text=final["text"], logprobs=logprobs)
                )
            else:
                out.append(self._event("response.refusal.done", **at, refusal=final["refusal"]))
            out.append(self._event("response.content_part.done", **at, part=final))
        out.append(self._event("response.output_item.done", output_index=item.index, item=item.final(status)))

    # -- events ------------------------------------------------------------------------------
    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, **fields, "sequence_number": self._sequence}
        self._sequence += 1
        return event

    def _object(self, status: str, output: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        return response_object(
            self.request,
            response_id=self.response_id,
            created_at=self.created_at,
            model=self._model,
            status=status,
            output=output,
            service_tier=self._service_tier,
            **fields,
        )


def _event_logprobs(logprobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An output_text part's logprobs as delta/done events carry them (without bytes)."""
    return [
        {
            "token": entry["token"],
            "logprob": entry["logprob"],
            "top_logprobs": [{"token": t["token"], "logprob": t["logprob"]} for t in entry["top_logprobs"]],
        }
        for entry in logprobs
    ]


__all__ = ["ChatToResponsesStream", "encode_event"]
