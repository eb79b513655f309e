"""A scriptable fake OpenAI-compatible upstream: a real HTTP server on 127.0.0.1.

    with FakeUpstream("a") as up:
        up.script(Behavior(status=429, headers={"retry-after": "1"}), Behavior(chunks=5))
        ...  # point the code under test at up.base_url
        assert up.requests[0].path == "/v1/chat/completions"

It speaks chat completions, completions, embeddings and models, and OpenAI's Responses API
(`POST /v1/responses`, also at Azure's `/openai/responses` and `/openai/v1/responses`) as
OpenAI does: the request is validated first (a refused one does not use up the script), the
answer is a Response object or its typed SSE events, and the ids it issued are remembered so
a `previous_response_id` (or a tool output's `call_id`) it never issued is refused, as
OpenAI refuses it: what a proxy that forwards the wrong conversation state must see.

Both chat completions and responses answer with a function call when the request has
function tools and its last message is a user message about the weather (or tool_choice
demands one), and with JSON text when a json_schema / json_object format is asked for;
otherwise the text is `tok0 tok1 ...`, one token per streamed chunk.

Hypercorn serves a small pure-ASGI app from a background thread with its own event
loop, so sync tests and pytest-asyncio tests can both use it.  Notes on hypercorn:
- it never raises from ``send`` when the client is gone (it drops the bytes), so a
  client leaving is only seen as ``http.disconnect`` on ``receive()``;
- it also delivers ``http.disconnect`` after every *completed* response, hence the
  ``finished_at`` check before recording ``disconnected_at``;
- returning from the app after ``more_body=True`` without a final body message makes
  it close the connection (FIN, no terminating chunk): that is how ``cut_after`` works.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import logging
import math
import os
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from hypercorn.asyncio import serve
from hypercorn.config import Config

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_MODELS = ("gpt-4o-mini", "text-embedding-3-small")
_BODY: Message = {"type": "http.response.body"}
_ROUTES = {
    "chat/completions": "chat",
    "completions": "text",
    "embeddings": "embeddings",
}


@dataclass
class Behavior:
    """How the fake answers one inference request."""

    status: int = 200
    error_message: str = "fake upstream error"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    chunks: int = 3
    chunk_delay_s: float = 0.0
    cut_after: int | None = None
    body: bytes | None = None
    content_type: str | None = None
    usage: bool = True
    # Responses API usage details (input_tokens_details / output_tokens_details); reasoning
    # tokens are counted in output_tokens, as OpenAI counts them.
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""
    json: Any = None
    received_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None  # last response byte handed over (or the cut)
    disconnected_at: float | None = None  # client left before the response finished
    client: tuple[str, int] | None = None  # client address: tells connections apart


class _ClientGone(Exception):
    pass


class FakeUpstream:
    """A real OpenAI-compatible HTTP server on 127.0.0.1:<free port>, run by hypercorn in
    a background thread with its own event loop, so both sync tests and async
    (pytest-asyncio) tests can use it."""

    def __init__(self, name: str = "up") -> None:
        self.name = name
        self.default = Behavior()
        self.models: list[str] = list(_MODELS)
        self.requests: list[RecordedRequest] = []
        self.root_url = ""
        self.base_url = ""
        self._script: deque[Behavior] = deque()
        self._lock = threading.Lock()
        self._gone = threading.Condition()  # notified when a client disconnects
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._aborts: set[asyncio.Event] = set()  # one per in-flight request
        self._error: BaseException | None = None
        self._counter = 0
        # Responses API state: what was issued (store not false), as the client got it, and
        # each one's conversation items (for previous_response_id and call_id checks).
        self.responses: dict[str, dict[str, Any]] = {}
        self._conversations: dict[str, list[dict[str, Any]]] = {}

    # -- test-facing API -------------------------------------------------------
    def script(self, *behaviors: Behavior) -> None:
        with self._lock:
            self._script.extend(behaviors)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
        with self._gone:
            self.requests.clear()
        self.responses.clear()
        self._conversations.clear()

    def wait_for_disconnect(self, timeout: float) -> RecordedRequest | None:
        """Block until a client went away mid-request; the first such request."""
        with self._gone:
            self._gone.wait_for(lambda: self._first_gone() is not None, timeout)
            return self._first_gone()

    async def wait_for_disconnect_async(self, timeout: float) -> RecordedRequest | None:
        """Same, without blocking the calling event loop."""
        deadline = time.monotonic() + timeout
        while (found := self._first_gone()) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return found

    def _first_gone(self) -> RecordedRequest | None:
        return next((r for r in self.requests if r.disconnected_at is not None), None)

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"fake upstream {self.name!r} is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.root_url = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.root_url}/v1"
        fd = sock.detach()  # hypercorn owns it from here on ("fd://" bind)
        self._error = None
        self._thread = threading.Thread(
            target=self._run, args=(fd,), name=f"fake-upstream-{self.name}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10.0
        while True:  # refused until hypercorn calls listen()
            if not self._thread.is_alive():
                self._thread = None
                raise RuntimeError("fake upstream failed to start") from self._error
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.01)

    def stop(self) -> None:
        thread, loop, stop_requested = self._thread, self._loop, self._stop_requested
        if thread is None:
            return
        if loop is not None and stop_requested is not None:
            try:
                loop.call_soon_threadsafe(stop_requested.set)
            except RuntimeError:  # loop already closed: the thread is ending anyway
                pass
        thread.join(timeout=10.0)
        if thread.is_alive():
            raise RuntimeError(f"fake upstream {self.name!r} did not stop")
        self._thread = self._loop = self._stop_requested = None
        if self._error is not None:
            raise RuntimeError(f"fake upstream {self.name!r} crashed") from self._error

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, fd: int) -> None:
        try:
            asyncio.run(self._serve(fd))
        except Exception as exc:  # noqa: BLE001 - start() re-raises it
            self._error = exc

    async def _serve(self, fd: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        config = Config()
        config.bind = [f"fd://{fd}"]
        config.accesslog = None
        config.errorlog = logging.getLogger("tests.fakes.upstream")  # no handlers added
        config.graceful_timeout = 2.0
        config.keep_alive_timeout = 60.0  # idle pooled connections stay usable
        await serve(self._app, config, shutdown_trigger=self._wait_for_stop)  # type: ignore[arg-type]

    async def _wait_for_stop(self) -> None:
        assert self._stop_requested is not None
        await self._stop_requested.wait()
        for abort in self._aborts:  # unblock stalled or streaming handlers
            abort.set()

    # -- the ASGI app (runs on the server loop) -------------------------------------
    async def _app(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = (await receive())["type"]
                if event == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif event == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = (
                raw_name.decode("latin-1").lower(),
                raw_value.decode("latin-1"),
            )
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        rec = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope["query_string"].decode("latin-1"),
            headers=headers,
            client=tuple(scope["client"]) if scope.get("client") else None,
        )
        self.requests.append(rec)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._mark_gone(rec)
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        rec.body = bytes(body)
        try:
            rec.json = json.loads(rec.body) if rec.body else None
        except ValueError:
            rec.json = None
        abort = asyncio.Event()
        self._aborts.add(abort)
        watcher = asyncio.create_task(self._watch_disconnect(receive, rec, abort))
        try:
            await self._respond(rec, send, abort)
        except _ClientGone:
            pass
        finally:
            self._aborts.discard(abort)
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _watch_disconnect(self, receive: Receive, rec: RecordedRequest, abort: asyncio.Event) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if rec.finished_at is None:  # hypercorn also says so after a complete response
            self._mark_gone(rec)
        abort.set()

    def _mark_gone(self, rec: RecordedRequest) -> None:
        with self._gone:
            if rec.disconnected_at is None:
                rec.disconnected_at = time.monotonic()
            self._gone.notify_all()

    def _next_behavior(self) -> tuple[Behavior, int]:
        """The behavior for the next inference request, and that request's number."""
        with self._lock:
            self._counter += 1
            return (self._script.popleft() if self._script else self.default), self._counter

    async def _emit(self, rec: RecordedRequest, send: Send, message: Message) -> None:
        try:
            await send(message)
        except OSError as exc:  # hypercorn never raises here; other servers do
            self._mark_gone(rec)
            raise _ClientGone from exc

    async def _reply(
        self,
        rec: RecordedRequest,
        send: Send,
        status: int,
        payload: bytes,
        headers: dict[str, str],
        cut: bool = False,  # send half the body, then drop the connection
    ) -> None:
        headers = {**headers, "content-length": str(len(payload))}
        start = {"type": "http.response.start", "status": status}
        await self._emit(rec, send, {**start, "headers": _encode(headers)})
        rec.finished_at = time.monotonic()  # before: hypercorn's disconnect follows
        part = payload[: len(payload) // 2] if cut else payload
        await self._emit(rec, send, {**_BODY, "body": part, "more_body": cut})

    async def _respond(self, rec: RecordedRequest, send: Send, abort: asyncio.Event) -> None:
        kind, deployment = _route(rec.method, rec.path)
        headers = {"content-type": "application/json", "x-fake-upstream": self.name}
        if kind == "models":
            data = [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"} for m in self.models
            ]
            models = _dumps({"object": "list", "data": data})
            return await self._reply(rec, send, 200, models, headers)
        if kind is None:
            error = _error(404, f"Invalid URL ({rec.method} {rec.path})")
            return await self._reply(rec, send, 404, error, headers)
        if kind == "responses":  # refused before the script is consulted, as 404s are
            refusal = _refuse_response_request(rec, self._conversations)
            if refusal is not None:
                return await self._reply(rec, send, refusal[0], refusal[1], headers)

        b, n = self._next_behavior()
        if b.delay_s > 0 and not await _pause(abort, b.delay_s):
            return  # the client left (the watcher recorded it) or we are stopping
        headers["x-request-id"] = f"req_{self.name}_{n}"
        headers.update((k.lower(), v) for k, v in b.headers.items())
        if b.content_type is not None:
            headers["content-type"] = b.content_type
        payload = rec.json if isinstance(rec.json, dict) else None
        if b.body is not None:
            return await self._reply(rec, send, b.status, b.body, headers)
        if b.status != 200:
            error = _error(b.status, b.error_message)
            return await self._reply(rec, send, b.status, error, headers)
        if payload is None:
            error = _error(400, "We could not parse the JSON body of your request.")
            return await self._reply(rec, send, 400, error, headers)

        if kind == "responses":
            return await self._answer_response(rec, send, abort, b, payload, headers)
        model = str(payload.get("model") or deployment or "fake-model")
        prompt = _count_words(payload, kind)
        if kind == "embeddings":
            vectors = _dumps(_embeddings(payload, model, prompt))
            return await self._reply(rec, send, 200, vectors, headers)
        # Chat answers as the Responses API does: a tool call or JSON when the request asks.
        turn = _plan_turn(_chat_as_responses(payload) if kind == "chat" else {}, b.chunks)
        finish = "stop" if turn.is_message else "tool_calls"
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": len(turn.deltas),
            "total_tokens": prompt + len(turn.deltas),
        }
        base: dict[str, Any] = {
            "id": f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{self.name}-{n}",
            "object": "chat.completion" if kind == "chat" else "text_completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
        }
        if payload.get("stream") is not True:
            choice = _choice(kind, "".join(turn.deltas), finish, first=True, stream=False, turn=turn)
            body = _dumps({**base, "choices": [choice], "usage": usage})
            cut = b.cut_after is not None
            return await self._reply(rec, send, 200, body, headers, cut)

        if kind == "chat":
            base["object"] = "chat.completion.chunk"
        include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
        if include_usage:
            base["usage"] = None  # as OpenAI does: on every chunk, set on the last one
        headers["content-type"] = b.content_type or "text/event-stream"
        headers["cache-control"] = "no-cache"
        start = {"type": "http.response.start", "status": 200}
        await self._emit(rec, send, {**start, "headers": _encode(headers)})
        for i, piece in enumerate(turn.deltas):
            if i == b.cut_after:
                rec.finished_at = time.monotonic()
                return  # no final message: hypercorn closes the connection mid-body
            if not await _pause(abort, b.chunk_delay_s):
                return
            choice = _choice(kind, piece, None, first=i == 0, stream=True, turn=turn)
            chunk = _sse({**base, "choices": [choice]})
            await self._emit(rec, send, {**_BODY, "body": chunk, "more_body": True})
        if b.cut_after == len(turn.deltas):
            rec.finished_at = time.monotonic()
            return
        tail = [{**base, "choices": [_choice(kind, "", finish, first=False, stream=True)]}]
        if include_usage and b.usage:
            tail.append({**base, "choices": [], "usage": usage})
        for event in tail:
            await self._emit(rec, send, {**_BODY, "body": _sse(event), "more_body": True})
        rec.finished_at = time.monotonic()
        await self._emit(rec, send, {**_BODY, "body": b"data: [DONE]\n\n"})

    async def _answer_response(
        self,
        rec: RecordedRequest,
        send: Send,
        abort: asyncio.Event,
        b: Behavior,
        payload: dict[str, Any],
        headers: dict[str, str],
    ) -> None:
        """A Responses API answer: one output item, a message or a function call."""
        turn = _plan_turn(payload, b.chunks)
        rid, created = f"resp_{os.urandom(24).hex()}", int(time.time())
        usage = _response_usage(payload, b, len(turn.deltas)) if b.usage else None
        final = _response_object(payload, rid, created, "completed", [turn.item], usage)
        if payload.get("store") is not False:  # OpenAI keeps nothing of store: false
            previous = self._conversations.get(str(payload.get("previous_response_id")), [])
            self._conversations[rid] = [*previous, *_input_items(payload["input"]), turn.item]
            self.responses[rid] = final
        if payload.get("stream") is not True:
            body = _dumps(final)
            return await self._reply(rec, send, 200, body, headers, b.cut_after is not None)

        obfuscate = _dict(payload.get("stream_options")).get("include_obfuscation") is not False
        events = _ResponseEvents(obfuscate)
        headers["content-type"] = b.content_type or "text/event-stream"
        headers["cache-control"] = "no-cache"
        start = {"type": "http.response.start", "status": 200}
        await self._emit(rec, send, {**start, "headers": _encode(headers)})
        opening = _response_object(payload, rid, created, "in_progress", [], None)
        for frame in events.opening(opening, turn):
            await self._emit(rec, send, {**_BODY, "body": frame, "more_body": True})
        for i, piece in enumerate(turn.deltas):
            if i == b.cut_after:
                rec.finished_at = time.monotonic()
                return  # no final message: hypercorn closes the connection mid-body
            if not await _pause(abort, b.chunk_delay_s):
                return
            await self._emit(rec, send, {**_BODY, "body": events.delta(turn, piece), "more_body": True})
        if b.cut_after == len(turn.deltas):
            rec.finished_at = time.monotonic()
            return
        closing = events.closing(final, turn)
        for frame in closing[:-1]:
            await self._emit(rec, send, {**_BODY, "body": frame, "more_body": True})
        rec.finished_at = time.monotonic()
        await self._emit(rec, send, {**_BODY, "body": closing[-1]})


# -- the Responses API (pure) ------------------------------------------------------------
# Parameters of chat completions that the Responses API does not take: OpenAI answers 400
# `unknown_parameter` for each, which is how a proxy that sent a chat body here shows up.
_CHAT_ONLY = (
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "response_format",
    "n",
    "stop",
    "logprobs",
    "logit_bias",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "functions",
    "function_call",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
)


def _invalid(message: str, param: str | None, code: str | None, status: int = 400) -> tuple[int, bytes]:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return status, _dumps({"error": error})


def _json_type(value: Any) -> str:
    names = {str: "a string", dict: "an object", list: "an array", bool: "a boolean", int: "an integer"}
    return "null" if value is None else names.get(type(value), "a number")


def _refuse_response_request(
    rec: RecordedRequest, conversations: dict[str, list[dict[str, Any]]]
) -> tuple[int, bytes] | None:
    """(status, OpenAI's error body) for a request OpenAI would refuse; None to answer it."""
    if "authorization" not in rec.headers and "api-key" not in rec.headers:
        message = (
            "You didn't provide an API key. You need to provide your API key in an Authorization header."
        )
        return 401, _error(401, message)
    payload = rec.json
    if not isinstance(payload, dict):
        return _invalid("We could not parse the JSON body of your request.", None, None)
    for name in _CHAT_ONLY:
        if name in payload:
            return _invalid(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    for name in ("model", "input"):
        if payload.get(name) is None:
            return _invalid(f"Missing required parameter: '{name}'.", name, "missing_required_parameter")
    if not isinstance(payload["model"], str) or not payload["model"]:
        return _invalid("Invalid 'model': expected a non-empty string.", "model", "invalid_value")
    items = payload["input"]
    if not isinstance(items, str | list):
        got = _json_type(items)
        message = f"Invalid type for 'input': expected a string or an array of items, but got {got} instead."
        return _invalid(message, "input", "invalid_type")
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict) or not ("role" in item or "type" in item):
            message = f"Invalid 'input[{i}]': expected an input item (an object with a role or a type)."
            return _invalid(message, f"input[{i}]", "invalid_type")
    history: list[dict[str, Any]] = []
    previous = payload.get("previous_response_id")
    if previous is not None:
        if not isinstance(previous, str) or previous not in conversations:
            message = f"Previous response with id '{previous}' not found."
            return _invalid(message, "previous_response_id", "previous_response_not_found")
        history = conversations[previous]
    calls = {
        item.get("call_id")
        for item in [*history, *_input_items(items)]
        if item.get("type") == "function_call"
    }
    for item in _input_items(items):
        if item.get("type") == "function_call_output" and item.get("call_id") not in calls:
            message = f"No tool call found for function call output with call_id {item.get('call_id')}."
            return _invalid(message, "input", None)
    return None


def _input_items(value: Any) -> list[dict[str, Any]]:
    """The input as items: a string is one user message."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


@dataclass
class _Turn:
    """What one response says: its finished output item and the deltas that stream it."""

    item: dict[str, Any]
    deltas: list[str]

    @property
    def is_message(self) -> bool:
        return self.item["type"] == "message"


def _plan_turn(payload: dict[str, Any], chunks: int) -> _Turn:
    """A function call when a function tool is asked for (tool_choice) or the last input item
    is a user message about the weather; JSON text for a json_schema or json_object format;
    otherwise `tok0 tok1 ...`, one delta per chunk, like the chat answers."""
    tool = _tool_to_call(payload)
    if tool is not None:
        arguments = json.dumps(_example(tool.get("parameters") or {"type": "object"}))
        item = {
            "id": f"fc_{os.urandom(24).hex()}",
            "type": "function_call",
            "status": "completed",
            "arguments": arguments,
            "call_id": f"call_{os.urandom(12).hex()}",
            "name": tool["name"],
        }
        return _Turn(item, _pieces(arguments, chunks))
    text_format = _dict(_dict(payload.get("text")).get("format"))
    if text_format.get("type") == "json_schema":
        deltas = _pieces(json.dumps(_example(text_format.get("schema"))), chunks)
    elif text_format.get("type") == "json_object":
        deltas = _pieces(json.dumps({"answer": "tok0"}), chunks)
    else:
        deltas = [f"tok{i} " for i in range(chunks)]
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": "".join(deltas)}
    item = {
        "id": f"msg_{os.urandom(24).hex()}",
        "type": "message",
        "status": "completed",
        "content": [part],
        "role": "assistant",
    }
    return _Turn(item, deltas)


def _tool_to_call(payload: dict[str, Any]) -> dict[str, Any] | None:
    tools = _list(payload.get("tools"))
    functions = [
        t for t in tools if isinstance(t, dict) and t.get("type") == "function" and _is_name(t.get("name"))
    ]
    choice = payload.get("tool_choice", "auto")
    if not functions or choice == "none":
        return None
    if isinstance(choice, dict):
        return next((t for t in functions if t["name"] == choice.get("name")), None)
    last = _input_items(payload.get("input"))[-1:]
    asks = (
        bool(last) and last[0].get("role") == "user" and "weather" in _text_of(last[0].get("content")).lower()
    )
    return functions[0] if choice == "required" or asks else None


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _example(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """A value that satisfies a JSON schema (first enum value, every property, `$ref`s followed;
    a recursive schema ends in empty arrays)."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 12:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return _example(target, root, depth + 1)
    if _list(schema.get("enum")):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if _list(schema.get(key)):
            return _example(schema[key][0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = _dict(schema.get("properties"))
        return {name: _example(sub, root, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [] if depth > 6 else [_example(schema.get("items"), root, depth + 1)]
    return {"string": "fake", "integer": 1, "number": 1.5, "boolean": True}.get(str(kind))


def _pieces(text: str, count: int) -> list[str]:
    """`text` in at most `count` consecutive pieces (fewer when it is shorter)."""
    if not text or count < 1:
        return [text] if text else []
    size = math.ceil(len(text) / count)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _response_usage(payload: dict[str, Any], b: Behavior, deltas: int) -> dict[str, Any]:
    prompt = _count_words(payload, "responses")
    output = deltas + b.reasoning_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": min(b.cached_tokens, prompt), "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": b.reasoning_tokens},
        "total_tokens": prompt + output,
    }


def _response_object(
    payload: dict[str, Any],
    rid: str,
    created: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    """The Response object, every field OpenAI sends, the request's settings echoed."""
    text = _dict(payload.get("text"))
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "completed_at": created if status == "completed" else None,
        "error": None,
        "incomplete_details": None,
        "instructions": payload.get("instructions"),
        "max_output_tokens": payload.get("max_output_tokens"),
        "max_tool_calls": payload.get("max_tool_calls"),
        "model": payload["model"],
        "output": output,
        "parallel_tool_calls": payload.get("parallel_tool_calls", True),
        "previous_response_id": payload.get("previous_response_id"),
        "prompt_cache_key": payload.get("prompt_cache_key"),
        "reasoning": payload.get("reasoning") or {"effort": None, "summary": None},
        "safety_identifier": payload.get("safety_identifier"),
        "service_tier": "default"
        if payload.get("service_tier") in (None, "auto")
        else payload["service_tier"],
        "store": payload.get("store", True),
        "temperature": payload.get("temperature", 1.0),
        "text": {
            "format": text.get("format") or {"type": "text"},
            "verbosity": text.get("verbosity", "medium"),
        },
        "tool_choice": payload.get("tool_choice", "auto"),
        "tools": payload.get("tools") or [],
        "top_logprobs": payload.get("top_logprobs", 0),
        "top_p": payload.get("top_p", 1.0),
        "truncation": payload.get("truncation", "disabled"),
        "usage": usage,
        "user": payload.get("user"),
        "metadata": payload.get("metadata") or {},
    }


class _ResponseEvents:
    """OpenAI's typed SSE frames for one response (`event: <type>` and `data: {...}`), numbered
    by `sequence_number` from 0, in OpenAI's order."""

    def __init__(self, obfuscate: bool) -> None:
        self._sequence = itertools.count()
        self._obfuscate = obfuscate  # OpenAI pads deltas unless include_obfuscation is false

    def frame(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": next(self._sequence), **fields}
        return f"event: {kind}\n".encode() + _sse(data)

    def opening(self, response: dict[str, Any], turn: _Turn) -> list[bytes]:
        item = turn.item
        # Added empty and in progress: the deltas fill it, output_item.done has it whole.
        started: dict[str, Any] = {**item, "status": "in_progress"}
        if turn.is_message:
            started["content"] = []
        else:
            started["arguments"] = ""
        frames = [
            self.frame("response.created", response=response),
            self.frame("response.in_progress", response=response),
            self.frame("response.output_item.added", output_index=0, item=started),
        ]
        if turn.is_message:
            part = {**item["content"][0], "text": ""}
            frames.append(self._part("response.content_part.added", item, part))
        return frames

    def delta(self, turn: _Turn, piece: str) -> bytes:
        padding = {"obfuscation": os.urandom(8).hex()[: max(1, 16 - len(piece))]} if self._obfuscate else {}
        if turn.is_message:
            where = {"item_id": turn.item["id"], "output_index": 0, "content_index": 0}
            return self.frame("response.output_text.delta", **where, delta=piece, logprobs=[], **padding)
        where = {"item_id": turn.item["id"], "output_index": 0}
        return self.frame("response.function_call_arguments.delta", **where, delta=piece, **padding)

    def closing(self, response: dict[str, Any], turn: _Turn) -> list[bytes]:
        item = turn.item
        if turn.is_message:
            part = item["content"][0]
            where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
            frames = [
                self.frame("response.output_text.done", **where, text=part["text"], logprobs=[]),
                self._part("response.content_part.done", item, part),
            ]
        else:
            where = {"item_id": item["id"], "output_index": 0}
            frames = [
                self.frame("response.function_call_arguments.done", **where, arguments=item["arguments"])
            ]
        frames.append(self.frame("response.output_item.done", output_index=0, item=item))
        frames.append(self.frame("response.completed", response=response))
        return frames

    def _part(self, kind: str, item: dict[str, Any], part: dict[str, Any]) -> bytes:
        return self.frame(kind, item_id=item["id"], output_index=0, content_index=0, part=part)


# -- pure helpers ------------------------------------------------------------------
async def _pause(abort: asyncio.Event, seconds: float) -> bool:
    """Sleep; False (early) when the request was aborted."""
    if seconds > 0:
        try:
            await asyncio.wait_for(abort.wait(), seconds)
        except TimeoutError:
            return True
    return not abort.is_set()


def _route(method: str, path: str) -> tuple[str | None, str | None]:
    """(kind, azure deployment) for a request; kind None means 404."""
    if method == "GET" and path == "/v1/models":
        return "models", None
    if method == "POST" and path in ("/v1/responses", "/openai/responses", "/openai/v1/responses"):
        return "responses", None  # Azure's Responses API is not per deployment: `model` says
    if method == "POST" and path.startswith("/v1/"):
        return _ROUTES.get(path[len("/v1/") :]), None
    prefix = "/openai/deployments/"
    if method == "POST" and path.startswith(prefix):
        deployment, _, tail = path[len(prefix) :].partition("/")
        if deployment:
            return _ROUTES.get(tail), deployment
    return None, None


def _choice(
    kind: str, text: str, finish: str | None, *, first: bool, stream: bool, turn: _Turn | None = None
) -> dict[str, Any]:
    """One choice of a chat or text completion; `text` is a tool call's arguments (or a piece
    of them) when `turn` is a function call."""
    choice: dict[str, Any] = {"index": 0}
    call = turn is not None and not turn.is_message
    if kind == "text":
        choice["text"] = text
    elif not stream:
        content = {"content": None, "tool_calls": [_tool_call(turn, text)]} if call else {"content": text}
        choice["message"] = {"role": "assistant", **content, "refusal": None}
    elif finish is not None:
        choice["delta"] = {}
    elif call:
        calls = [{"index": 0, **_tool_call(turn, text, whole=first)}]
        choice["delta"] = (
            {"role": "assistant", "content": None, "tool_calls": calls} if first else {"tool_calls": calls}
        )
    else:
        choice["delta"] = {"role": "assistant", "content": text} if first else {"content": text}
    return {**choice, "logprobs": None, "finish_reason": finish}


def _tool_call(turn: _Turn | None, arguments: str, *, whole: bool = True) -> dict[str, Any]:
    """A chat tool call (`whole`), or a later stream piece of one: its arguments only."""
    assert turn is not None
    if not whole:
        return {"function": {"arguments": arguments}}
    function = {"name": turn.item["name"], "arguments": arguments}
    return {"id": turn.item["call_id"], "type": "function", "function": function}


def _chat_as_responses(payload: dict[str, Any]) -> dict[str, Any]:
    """What decides a chat answer (tools, tool_choice, response_format, the last message), in
    the Responses API's shape, so both endpoints answer alike (`_plan_turn`)."""
    tools = [
        {**_dict(tool.get("function")), "type": "function"}
        for tool in _list(payload.get("tools"))
        if isinstance(tool, dict) and tool.get("type") == "function"
    ]
    choice = payload.get("tool_choice", "auto")
    if isinstance(choice, dict):
        choice = {"type": "function", "name": _dict(choice.get("function")).get("name")}
    response_format = _dict(payload.get("response_format"))
    schema = _dict(response_format.get("json_schema")).get("schema")
    text = {"format": {"type": response_format.get("type"), "schema": schema}}
    return {"tools": tools, "tool_choice": choice, "text": text, "input": _list(payload.get("messages"))[-1:]}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _embeddings(payload: dict[str, Any], model: str, prompt_tokens: int) -> dict[str, Any]:
    raw = payload.get("input")
    is_token_list = isinstance(raw, list) and raw != [] and all(isinstance(x, int) for x in raw)
    inputs = raw if isinstance(raw, list) and not is_token_list else [raw]
    dim = payload.get("dimensions")
    dim = dim if isinstance(dim, int) and dim > 0 else 8
    data = []
    for index, item in enumerate(inputs):
        digest = hashlib.shake_256(json.dumps(item).encode()).digest(dim)
        vector = [round(byte / 127.5 - 1.0, 4) for byte in digest]
        embedding: Any = vector
        if payload.get("encoding_format") == "base64":  # the openai SDK asks for this
            embedding = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}


def _count_words(payload: dict[str, Any], kind: str) -> int:
    """Deterministic 'prompt tokens': whitespace-separated words (1 per token id)."""

    def words(value: Any) -> int:
        if isinstance(value, str):
            return len(value.split())
        if isinstance(value, list):
            return sum(words(v) for v in value)
        if isinstance(value, dict):
            return words(value.get("text"))
        return 1 if isinstance(value, int) else 0

    if kind == "chat":
        messages = payload.get("messages") or []
        return words([m.get("content") for m in messages if isinstance(m, dict)])
    if kind == "responses":
        items = _input_items(payload.get("input"))
        said = [item.get("content") or item.get("output") or item.get("arguments") for item in items]
        return words(payload.get("instructions")) + words(said)
    return words(payload.get("prompt" if kind == "text" else "input"))


def _error(status: int, message: str) -> bytes:
    kind, code = {
        401: ("invalid_request_error", "invalid_api_key"),
        429: ("requests", "rate_limit_exceeded"),
    }.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return _dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _sse(obj: Any) -> bytes:
    return b"data: " + _dumps(obj) + b"\n\n"


def _encode(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
