"""Gemini's `streamGenerateContent?alt=sse` -> OpenAI chat.completion.chunk SSE, incrementally.

Each Gemini event is a whole `GenerateContentResponse` holding the next piece of text or
whole function calls (never partial arguments), of one candidate or several (`n` asks for
candidateCount: each candidate is the choice of its index). The stream has no end marker of
its own: a candidate's event with a `finishReason` is its last, and when every candidate has
finished, the usage that event carries is final: the translated stream ends with the usage
chunk when asked for, and `[DONE]`.
"""

from __future__ import annotations

from typing import Any

import orjson

from asgi_llm.sse import DONE, SSEDecoder, SSEError, encode_event, event_data
from asgi_llm.translate.gemini_logprobs import openai_logprobs
from asgi_llm.translate.gemini_response import (
    completion_id,
    finish_reason,
    openai_usage,
    read_parts,
    usage_numbers,
)

_DONE_EVENT = DONE + b"\n\n"


class GeminiErrorEvent(SSEError):
    """The stream carried an error object instead of a response (no `[DONE]` follows)."""


class GeminiToChatStream:
    """Gemini SSE in, OpenAI chunks out. After it: `usage` (prompt, completion, cached,
    reasoning), `finish_reason`, `chunks` (chunks emitted) and `done`.

    The role goes out with the first content, so the first byte to the client is the first
    token and an error before it can still fail over.
    """

    __slots__ = (
        "done",
        "usage",
        "finish_reason",
        "chunks",
        "_decoder",
        "_include_usage",
        "_head",
        "_role_sent",
        "_calls",
        "_candidate_calls",
        "_candidates",
        "_finished",
        "_metadata",
        "_response_id",
    )

    def __init__(self, *, created: int, model: str, include_usage: bool, candidates: int = 1) -> None:
        self.done = False
        self.usage: tuple[int, int, int, int] | None = None
        self.finish_reason: str | None = None
        self.chunks = 0
        self._decoder = SSEDecoder()
        self._include_usage = include_usage
        self._head: dict[str, Any] = {
            "id": "chatcmpl-gemini",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._role_sent: set[int] = set()  # choices whose first delta went out
        self._calls = 0  # tool calls emitted so far, all candidates (their ids' numbering)
        self._candidate_calls: dict[int, int] = {}  # per choice: its tool calls' OpenAI index
        self._candidates = candidates
        self._finished: set[int] = set()
        self._metadata: Any = None
        self._response_id: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        for event in self._decoder.feed(chunk):
            data = event_data(event)
            if data is None or self.done:
                continue
            try:
                response = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise SSEError("an event that is not JSON") from None
            if not isinstance(response, dict):
                raise SSEError("an event that is not a JSON object")
            try:
                self._event(response, out)
            except SSEError:
                raise
            except (AttributeError, TypeError, ValueError) as exc:  # a field of the wrong type
                raise SSEError("a malformed event") from exc
        return b"".join(out)

    def _event(self, response: dict[str, Any], out: list[bytes]) -> None:
        if "error" in response:
            error = response["error"] if isinstance(response["error"], dict) else {}
            raise GeminiErrorEvent(f"the upstream stream reported {str(error.get('status'))[:40]}")
        if self._response_id is None and isinstance(response.get("responseId"), str):
            self._response_id = response["responseId"]
            self._head["id"] = completion_id(response)
        if isinstance(response.get("modelVersion"), str):
            self._head["model"] = response["modelVersion"]
        if response.get("usageMetadata") is not None:
            self._metadata = response["usageMetadata"]  # running totals: the last one counts
            self.usage = usage_numbers(self._metadata)
        candidates = response.get("candidates") or []
        for position, candidate in enumerate(candidates):
            if not isinstance(candidate, dict):
                continue
            index = candidate.get("index", position)
            index = index if type(index) is int and 0 <= index < self._candidates else position
            if index in self._finished:
                continue
            text, calls = read_parts(
                (candidate.get("content") or {}).get("parts"), self._response_id, self._calls
            )
            if text:
                logprobs = openai_logprobs(candidate.get("logprobsResult"))
                self._emit(out, {"content": text}, index=index, logprobs=logprobs)
            if calls:
                first = self._candidate_calls.get(index, 0)
                deltas = [{"index": first + i, **call} for i, call in enumerate(calls)]
                self._calls += len(calls)
                self._candidate_calls[index] = first + len(calls)
                self._emit(out, {"tool_calls": deltas}, index=index)
            if candidate.get("finishReason"):
                called = self._candidate_calls.get(index, 0) > 0
                self._finish(out, finish_reason(candidate["finishReason"], called=called), index)
        if (
            not candidates
            and isinstance(response.get("promptFeedback"), dict)
            and response["promptFeedback"].get("blockReason")
        ):
            for index in range(self._candidates):
                self._finish(out, "content_filter", index)

    def _emit(
        self,
        out: list[bytes],
        delta: dict[str, Any],
        finish: str | None = None,
        *,
        index: int,
        logprobs: dict[str, Any] | None = None,
    ) -> None:
        if index not in self._role_sent:
            self._role_sent.add(index)
            delta = {"role": "assistant", **delta}
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        out.append(encode_event(orjson.dumps({**self._head, "choices": [choice]})))
        self.chunks += 1

    def _finish(self, out: list[bytes], reason: str, index: int) -> None:
        if index in self._finished:
            return
        self._finished.add(index)
        if index == 0 or self.finish_reason is None:
            self.finish_reason = reason  # the first choice's, as the usage record keeps one
        self._emit(out, {}, reason, index=index)
        if len(self._finished) < self._candidates:
            return
        usage = openai_usage(self._metadata)
        if self._include_usage and usage is not None:
            out.append(encode_event(orjson.dumps({**self._head, "choices": [], "usage": usage})))
        out.append(_DONE_EVENT)
        self.done = True


__all__ = ["GeminiErrorEvent", "GeminiToChatStream"]
