"""A scriptable fake OpenAI-compatible upstream: a real HTTP server on 127.0.0.1.

    with FakeUpstream("a") as up:
        up.script(Behavior(status=429, headers={"retry-after": "1"}), Behavior(chunks=5))
        ...  # point the code under test at up.base_url
        assert up.requests[0].path == "/v1/chat/completions"

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
import json
import logging
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

    # -- test-facing API -------------------------------------------------------
    def script(self, *behaviors: Behavior) -> None:
        with self._lock:
            self._script.extend(behaviors)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
        with self._gone:
            self.requests.clear()

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

        model = str(payload.get("model") or deployment or "fake-model")
        prompt = _count_words(payload, kind)
        if kind == "embeddings":
            vectors = _dumps(_embeddings(payload, model, prompt))
            return await self._reply(rec, send, 200, vectors, headers)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": b.chunks,
            "total_tokens": prompt + b.chunks,
        }
        base: dict[str, Any] = {
            "id": f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{self.name}-{n}",
            "object": "chat.completion" if kind == "chat" else "text_completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
        }
        if payload.get("stream") is not True:
            text = "".join(f"tok{i} " for i in range(b.chunks))
            choice = _choice(kind, text, "stop", first=True, stream=False)
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
        for i in range(b.chunks):
            if i == b.cut_after:
                rec.finished_at = time.monotonic()
                return  # no final message: hypercorn closes the connection mid-body
            if not await _pause(abort, b.chunk_delay_s):
                return
            choice = _choice(kind, f"tok{i} ", None, first=i == 0, stream=True)
            chunk = _sse({**base, "choices": [choice]})
            await self._emit(rec, send, {**_BODY, "body": chunk, "more_body": True})
        if b.cut_after == b.chunks:
            rec.finished_at = time.monotonic()
            return
        tail = [{**base, "choices": [_choice(kind, "", "stop", first=False, stream=True)]}]
        if include_usage and b.usage:
            tail.append({**base, "choices": [], "usage": usage})
        for event in tail:
            await self._emit(rec, send, {**_BODY, "body": _sse(event), "more_body": True})
        rec.finished_at = time.monotonic()
        await self._emit(rec, send, {**_BODY, "body": b"data: [DONE]\n\n"})


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
    if method == "POST" and path.startswith("/v1/"):
        return _ROUTES.get(path[len("/v1/") :]), None
    prefix = "/openai/deployments/"
    if method == "POST" and path.startswith(prefix):
        deployment, _, tail = path[len(prefix) :].partition("/")
        if deployment:
            return _ROUTES.get(tail), deployment
    return None, None


def _choice(kind: str, text: str, finish: str | None, *, first: bool, stream: bool) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0}
    if kind == "text":
        choice["text"] = text
    elif not stream:
        choice["message"] = {"role": "assistant", "content": text, "refusal": None}
    elif finish is not None:
        choice["delta"] = {}
    else:
        choice["delta"] = {"role": "assistant", "content": text} if first else {"content": text}
    return {**choice, "logprobs": None, "finish_reason": finish}


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
