"""A scriptable fake Anthropic Messages API: a real HTTP server on 127.0.0.1.

    with FakeAnthropic() as claude:
        claude.script(Reply(status=529), Reply(tool_uses=[("get_weather", {"city": "Paris"})]))
        ...  # point an `anthropic` deployment at claude.base_url
        assert claude.requests[0].json["system"] == "Be brief."

The server, the thread, request recording, scripting and disconnect tracking are
FakeUpstream's (tests/fakes/upstream.py); only the answers differ: Anthropic's message
objects, its event stream (message_start, content_block_*, ping, message_delta,
message_stop) and its error shape.

It checks what it receives as Anthropic does, so a proxy that changes a request on its way
is caught: unknown top-level fields are refused; a thinking block sent back must carry the
signature the fake issued for it, unmodified (a redacted_thinking block, data it issued);
with thinking on, a last assistant turn that used a tool must start with its thinking block;
a PDF document must be one; 1-hour cache breakpoints must come before 5-minute ones.

Its prompt cache is simulated: tokens are words (tools, then system, then messages, in
Anthropic's prefix order); the longest prefix cached before, ending at or up to 20 blocks
before a `cache_control` breakpoint, is a read, each later breakpoint writes its part of the
prompt with its TTL (`cache_creation` says 5 minutes and 1 hour apart), the rest is
`input_tokens`. Every usage it reports is kept
in `usages` (one per answered message), so tests can check the proxy's figures against it.
With thinking on, it answers a thinking block with an HMAC signature first; a PDF with
`citations: {enabled: true}` gets a cited text block; a `web_search` server tool gets a
server_tool_use and its result. `POST /v1/messages/count_tokens` counts as the cache does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.upstream import (
    FakeUpstream,
    RecordedRequest,
    Send,
    _dumps,
    _encode,
    _pause,
)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
    }
)
PDF_TOKENS = 50  # a document block's tokens, besides its words
TTL_S = {"5m": 300.0, "1h": 3600.0}
LOOKBACK = 20  # blocks before a breakpoint where Anthropic looks for an earlier cached prefix


@dataclass
class Reply:
    """How the fake answers one POST /v1/messages."""

    status: int = 200
    error_message: str = "fake anthropic error"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    text: str = "Hello from the fake Claude."
    chunks: int = 3  # text_delta events the text is cut into
    tool_uses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    json_pieces: int = 3  # input_json_delta events per tool input
    stop_reason: str | None = None  # default: tool_use when tools were used, else end_turn
    stop_sequence: str | None = None
    thinking: bool = False  # a thinking block first even when the request did not ask
    thinking_text: str = "Let me think."
    redacted: bool = False  # a redacted_thinking block after the thinking block
    input_tokens: int | None = None  # default: the simulated prompt cache's count
    output_tokens: int = 7
    start_usage_zero: bool = False  # stream: message_start says 0/0, message_delta the truth
    chunk_delay_s: float = 0.0
    cut_after: int | None = None  # stream: drop the connection after this many events
    error_after: int | None = None  # stream: an `event: error` (overloaded) after this many
    body: bytes | None = None  # answer these bytes as they are


def _pieces(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, count)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def words(value: Any) -> int:
    """The fake's tokens: words of the text a request carries (tool inputs and definitions
    as their JSON), `PDF_TOKENS` more per document."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(words(v) for v in value)
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "tool_use":
            return len(_dumps(value.get("input", {})).split(b","))
        if "input_schema" in value or (kind and kind not in _CONTENT_TYPES):  # a tool definition
            return len(_dumps(value).split(b","))
        extra = PDF_TOKENS if kind == "document" else 0
        return extra + sum(words(value.get(k)) for k in ("text", "thinking", "content", "title"))
    return 0


_CONTENT_TYPES = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}
)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + _dumps(data) + b"\n\n"


def message_events(
    message: dict[str, Any], *, chunks: int = 3, json_pieces: int = 3, start_usage_zero: bool = False
) -> list[bytes]:
    """A whole message as Anthropic's stream of events, one bytes object per event.

    message_start carries the input side of the usage (and output_tokens 1), message_delta
    the whole usage, cumulative, as Anthropic sends them now.
    """
    usage = message["usage"]
    start_usage = (
        {"input_tokens": 0, "output_tokens": 0} if start_usage_zero else {**usage, "output_tokens": 1}
    )
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}
    events = [_event("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        deltas: list[dict[str, Any]] = []
        if kind == "text":
            opened: dict[str, Any] = {"type": "text", "text": ""}
            if "citations" in block:
                opened["citations"] = []
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"], chunks)]
            deltas += [{"type": "citations_delta", "citation": c} for c in block.get("citations") or ()]
        elif kind == "tool_use":
            opened = {**block, "input": {}}
            raw = _dumps(block["input"]).decode()
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(raw, json_pieces)]
        elif kind == "thinking":
            opened = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": block["thinking"]},
                {"type": "signature_delta", "signature": block["signature"]},
            ]
        else:  # redacted_thinking, server tool blocks: whole at their start
            opened = block
        events.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opened},
            )
        )
        if index == 0:
            events.append(_event("ping", {"type": "ping"}))
        events.extend(
            _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        )
        events.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
                "usage": usage,
            },
        )
    )
    events.append(_event("message_stop", {"type": "message_stop"}))
    return events


def error_body(status: int, message: str) -> bytes:
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return _dumps({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"})


class BadRequest(Exception):
    """What the fake refuses, with Anthropic's 400 message."""


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache_control(v) for v in value]
    return value


def _blocks(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The prompt as cacheable blocks, in Anthropic's prefix order: tools, system, messages."""
    blocks = [t for t in payload.get("tools") or () if isinstance(t, dict)]
    system = payload.get("system")
    if isinstance(system, str):
        blocks.append({"type": "text", "text": system})
    elif isinstance(system, list):
        blocks.extend(system)
    for turn in payload.get("messages") or ():
        content = turn.get("content")
        if isinstance(content, str):
            blocks.append({"type": "text", "text": content, "role": turn.get("role")})
        else:
            blocks.extend({**b, "role": turn.get("role")} for b in content or ())
    return blocks


class FakeAnthropic(FakeUpstream):
    """Anthropic's Messages API on 127.0.0.1:<free port>; `base_url` ends in /v1."""

    default: Reply  # type: ignore[assignment]

    def __init__(self, name: str = "claude") -> None:
        super().__init__(name)
        self.default = Reply()
        self.usages: list[dict[str, Any]] = []  # every usage reported, in order
        self.streams: list[bytes] = []  # every event stream sent, as its bytes
        self._secret = hashlib.sha256(f"fake-anthropic-{name}".encode()).digest()
        self._cache: dict[str, float] = {}  # prefix digest -> expiry (monotonic)
        self._redacted: set[str] = set()

    def script(self, *replies: Reply) -> None:  # type: ignore[override]
        super().script(*replies)  # type: ignore[arg-type]

    def reset(self) -> None:
        super().reset()
        self.usages.clear()
        self.streams.clear()
        self._cache.clear()
        self._redacted.clear()

    # -- what Anthropic checks ---------------------------------------------------------
    def sign(self, thinking: str) -> str:
        mac = hmac.new(self._secret, thinking.encode(), hashlib.sha256).digest()
        return base64.b64encode(b"sig" + mac).decode()

    def _check(self, payload: dict[str, Any]) -> None:
        for name in payload:
            if name not in KNOWN_FIELDS:
                raise BadRequest(f"{name}: Extra inputs are not permitted")
        if "max_tokens" not in payload:
            raise BadRequest("max_tokens: Field required")
        turns = payload.get("messages")
        if not isinstance(turns, list) or not turns:
            raise BadRequest("messages: Field required")
        for i, turn in enumerate(turns):
            content = turn.get("content") if isinstance(turn, dict) else None
            for j, block in enumerate(content if isinstance(content, list) else ()):
                self._check_block(block, f"messages.{i}.content.{j}")
        thinking = payload.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") == "enabled":
            if not isinstance(thinking.get("budget_tokens"), int) or thinking["budget_tokens"] < 1024:
                raise BadRequest(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
                )
            if thinking["budget_tokens"] >= payload["max_tokens"]:
                raise BadRequest("`max_tokens` must be greater than `thinking.budget_tokens`.")
            assistants = [(i, t) for i, t in enumerate(turns) if t.get("role") == "assistant"]
            if assistants and assistants[-1][0] == len(turns) - 2:
                i, last = assistants[-1]
                content = last.get("content")
                blocks = content if isinstance(content, list) else []
                if any(b.get("type") == "tool_use" for b in blocks) and blocks[0].get("type") not in (
                    "thinking",
                    "redacted_thinking",
                ):
                    raise BadRequest(
                        f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                        f"`{blocks[0].get('type')}`. When `thinking` is enabled, a final `assistant` message "
                        "must start with a thinking block."
                    )
        seen_5m = False
        for block in _blocks(payload):
            control = block.get("cache_control") if isinstance(block, dict) else None
            if isinstance(control, dict):
                ttl = control.get("ttl", "5m")
                if ttl not in TTL_S:
                    raise BadRequest(f"cache_control.ttl: Input should be '5m' or '1h', not {ttl!r}")
                if ttl == "1h" and seen_5m:
                    raise BadRequest("a ttl='1h' cache_control block must come before any ttl='5m' block")
                seen_5m = seen_5m or ttl == "5m"

    def _check_block(self, block: Any, where: str) -> None:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "thinking":
            if "signature" not in block:
                raise BadRequest(f"{where}.thinking.signature: Field required")
            if not hmac.compare_digest(str(block["signature"]), self.sign(str(block.get("thinking")))):
                raise BadRequest(f"{where}: Invalid `signature` in `thinking` block")
        elif kind == "redacted_thinking":
            if block.get("data") not in self._redacted:
                raise BadRequest(f"{where}: Invalid `data` in `redacted_thinking` block")
        elif kind == "document":
            source = block.get("source") or {}
            if source.get("type") == "base64":
                try:
                    pdf = base64.b64decode(source.get("data", ""), validate=True)
                except ValueError:
                    pdf = b""
                if source.get("media_type") != "application/pdf" or not pdf.startswith(b"%PDF"):
                    raise BadRequest(f"{where}: The PDF specified was not valid.")

    # -- the simulated prompt cache ----------------------------------------------------
    def _usage(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Input-side usage, as Anthropic's prompt cache would count it: the longest cached
        prefix ending within `LOOKBACK` blocks before a breakpoint is read, each breakpoint
        after it writes its part (with its TTL), the rest is fresh input."""
        blocks = _blocks(payload)
        model = str(payload.get("model"))
        now = time.monotonic()
        prefix: list[Any] = []
        totals: list[int] = []  # tokens up to and including each block
        digests: list[str] = []
        for block in blocks:
            prefix.append(_strip_cache_control(block))
            totals.append((totals[-1] if totals else 0) + words(block))
            digests.append(hashlib.sha256(_dumps([model, prefix])).hexdigest())
        marks = [i for i, block in enumerate(blocks) if isinstance(block.get("cache_control"), dict)]
        hit = -1
        for mark in marks:
            for position in range(mark, max(-1, mark - LOOKBACK - 1), -1):
                if self._cache.get(digests[position], 0.0) > now:
                    hit = max(hit, position)
                    break
        read = covered = totals[hit] if hit >= 0 else 0
        write_5m = write_1h = 0
        for mark in marks:
            if mark <= hit:
                continue
            ttl = blocks[mark]["cache_control"].get("ttl", "5m")
            if ttl == "1h":
                write_1h += totals[mark] - covered
            else:
                write_5m += totals[mark] - covered
            covered = totals[mark]
            self._cache[digests[mark]] = now + TTL_S[ttl]
        total = totals[-1] if totals else 0
        return {
            "input_tokens": total - read - write_5m - write_1h,
            "cache_creation_input_tokens": write_5m + write_1h,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
        }

    # -- answers -----------------------------------------------------------------------
    async def _respond(self, rec: RecordedRequest, send: Send, abort: asyncio.Event) -> None:
        headers = {"content-type": "application/json", "request-id": f"req_{self.name}"}
        payload = rec.json if isinstance(rec.json, dict) else None
        if rec.method == "POST" and rec.path == "/v1/messages/count_tokens":
            if payload is None or not isinstance(payload.get("messages"), list):
                return await self._reply(rec, send, 400, error_body(400, "messages: Field required"), headers)
            count = sum(words(block) for block in _blocks(payload))
            return await self._reply(rec, send, 200, _dumps({"input_tokens": count}), headers)
        if rec.method != "POST" or rec.path != "/v1/messages":
            body = error_body(404, f"Not found: {rec.method} {rec.path}")
            return await self._reply(rec, send, 404, body, headers)
        if payload is not None:  # a refused request does not use up the script
            try:
                self._check(payload)
            except BadRequest as exc:
                return await self._reply(rec, send, 400, error_body(400, str(exc)), headers)
        reply, n = self._next_behavior()
        assert isinstance(reply, Reply)
        if reply.delay_s > 0 and not await _pause(abort, reply.delay_s):
            return
        headers.update((k.lower(), v) for k, v in reply.headers.items())
        if reply.body is not None:
            return await self._reply(rec, send, reply.status, reply.body, headers)
        if reply.status != 200:
            body = error_body(reply.status, reply.error_message)
            return await self._reply(rec, send, reply.status, body, headers)
        if payload is None:
            return await self._reply(rec, send, 400, error_body(400, "max_tokens: Field required"), headers)
        message = self._message(reply, payload, n)
        self.usages.append(message["usage"])
        if payload.get("stream") is not True:
            return await self._reply(rec, send, 200, _dumps(message), headers)
        await self._stream(rec, send, abort, reply, message)

    def _message(self, reply: Reply, payload: dict[str, Any], n: int) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        thinking = payload.get("thinking")
        if reply.thinking or (isinstance(thinking, dict) and thinking.get("type") == "enabled"):
            text = f"{reply.thinking_text} (turn {n})"
            content.append({"type": "thinking", "thinking": text, "signature": self.sign(text)})
            if reply.redacted:
                data = base64.b64encode(f"redacted-{self.name}-{n}".encode()).decode()
                self._redacted.add(data)
                content.append({"type": "redacted_thinking", "data": data})
        if any(
            isinstance(t, dict) and str(t.get("type", "")).startswith("web_search")
            for t in payload.get("tools") or ()
        ):
            call = f"srvtoolu_{self.name}_{n}"
            content.append(
                {"type": "server_tool_use", "id": call, "name": "web_search", "input": {"query": "news"}}
            )
            content.append(
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": call,
                    "content": [
                        {
                            "type": "web_search_result",
                            "url": "https://example.com/",
                            "title": "Example",
                            "encrypted_content": "enc",
                            "page_age": None,
                        }
                    ],
                }
            )
        if reply.text:
            block: dict[str, Any] = {"type": "text", "text": reply.text}
            cited = self._cited_document(payload)
            if cited is not None:
                index, title = cited
                block["citations"] = [
                    {
                        "type": "page_location",
                        "cited_text": "Hello, PDF.",
                        "document_index": index,
                        "document_title": title,
                        "start_page_number": 1,
                        "end_page_number": 2,
                    }
                ]
            content.append(block)
        for i, (name, arguments) in enumerate(reply.tool_uses):
            content.append(
                {"type": "tool_use", "id": f"toolu_{self.name}_{n}_{i}", "name": name, "input": arguments}
            )
        stop = reply.stop_reason or ("tool_use" if reply.tool_uses else "end_turn")
        if reply.input_tokens is not None:
            usage: dict[str, Any] = {"input_tokens": reply.input_tokens}
        else:
            usage = self._usage(payload)
        usage["output_tokens"] = reply.output_tokens
        return {
            "id": f"msg_{self.name}_{n}",
            "type": "message",
            "role": "assistant",
            "model": str(payload.get("model")),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": reply.stop_sequence,
            "usage": usage,
        }

    @staticmethod
    def _cited_document(payload: dict[str, Any]) -> tuple[int, str | None] | None:
        index = 0
        for turn in payload.get("messages") or ():
            for block in turn.get("content") if isinstance(turn.get("content"), list) else ():
                if block.get("type") == "document":
                    if (block.get("citations") or {}).get("enabled") is True:
                        return index, block.get("title")
                    index += 1
        return None

    async def _stream(
        self, rec: RecordedRequest, send: Send, abort: asyncio.Event, reply: Reply, message: dict[str, Any]
    ) -> None:
        headers = {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "request-id": f"req_{self.name}",
        }
        await self._emit(
            rec, send, {"type": "http.response.start", "status": 200, "headers": _encode(headers)}
        )
        events = message_events(
            message,
            chunks=reply.chunks,
            json_pieces=reply.json_pieces,
            start_usage_zero=reply.start_usage_zero,
        )
        self.streams.append(b"".join(events[: reply.cut_after]))
        for i, event in enumerate(events):
            if i == reply.cut_after:
                rec.finished_at = time.monotonic()
                return  # no final message: hypercorn closes the connection mid-body
            if i == reply.error_after:
                event = _event(
                    "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                )
                rec.finished_at = time.monotonic()
                await self._emit(rec, send, {"type": "http.response.body", "body": event})
                return
            if i and not await _pause(abort, reply.chunk_delay_s):
                return
            await self._emit(rec, send, {"type": "http.response.body", "body": event, "more_body": True})
        rec.finished_at = time.monotonic()
        await self._emit(rec, send, {"type": "http.response.body", "body": b""})
