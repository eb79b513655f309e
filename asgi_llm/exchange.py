"""One request, one exchange: the first LLM-aware layer reads and parses the request,
puts the LLMContext in scope, owns the error boundary and applies the response headers.

Every layer subclasses `LLMLayer`, so whichever of them is outermost plays that part and
the others find the context already there.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
from collections.abc import Callable
from typing import Any

from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager, as_manager
from asgi_llm.context import LLMContext
from asgi_llm.errors import InternalError, InvalidRequest, ProxyError
from asgi_llm.lifespan import Placement, run_lifespan
from asgi_llm.request import (
    INFERENCE,
    ClientDisconnected,
    Route,
    check_content_type,
    grant_for,
    header,
    match_endpoint,
    parse_json,
    read_body,
    validate,
)
from asgi_llm.responses import send_error
from asgi_llm.translate.count_tokens import accept_count_tokens
from asgi_llm.translate.endpoint import accept_messages
from asgi_llm.translate.responses_endpoint import accept_responses
from asgi_llm.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("asgi_llm")

# Inbound surfaces other than OpenAI chat: each turns its request into a chat request (for
# every layer to read; the client's own request and headers stay on the context for an
# upstream that speaks its API) and wraps `send` so the answer goes back in its own form.
SURFACES: dict[str, Callable[[LLMContext, Scope, Send], Send]] = {
    "messages": accept_messages,
    "messages.count_tokens": accept_count_tokens,
    "responses": accept_responses,
}

_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


class LLMLayer:
    """Base of every asgi-llm middleware: scope guard, context, lifespan hooks."""

    # What this layer is, for the order checks of others ("auth", "ratelimit", ...).
    kind: str = ""
    # Kinds of layer this one must sit inside of (outer to it) when they are present: checked
    # when the stack starts (lifespan startup), so a mis-ordered stack fails with a message.
    must_be_inside: tuple[str, ...] = ()

    def __init__(self, app: ASGIApp, *, config: Config | ConfigManager) -> None:
        self.app = app
        self.configs = as_manager(config)
        self.request_ids = RequestIds()
        self._placement = Placement(
            self.kind or type(self).__name__, type(self).__name__, self.order_requirements
        )

    def order_requirements(self) -> dict[str, str]:
        """{kind of an outer layer: why}; override to depend on the config."""
        return {kind: "the request's context" for kind in self.must_be_inside}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                hooks = (self.startup, self.shutdown) if self._owns_resources() else None
                await run_lifespan(
                    scope, receive, send, self.app, type(self).__name__, hooks, self._placement
                )
                return
            await self.app(scope, receive, send)
            return
        state = scope.get("state")
        ctx = state.get("llm") if state else None
        if ctx is not None:
            await self.handle(ctx, scope, receive, send)
            return
        config = self.configs.current
        endpoint = match_endpoint(scope, config.server.path_prefix)
        if endpoint is None:
            await self.pass_through(scope, receive, send)
            return
        await run_exchange(
            config, endpoint, scope, receive, send, self.handle, self.request_ids.for_scope(scope)
        )

    async def handle(self, ctx: LLMContext, scope: Scope, receive: Receive, send: Send) -> None:
        """The layer's work on an LLM request; call `self.app` to go on inward."""
        await self.app(scope, receive, send)

    async def pass_through(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    # Lifespan: a layer that owns clients opens them when the app starts and closes them
    # when it stops, also when mounted inside a user's app. The outermost layer runs every
    # layer's hooks and reports a failed startup (asgi_llm/lifespan.py).
    async def startup(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def _owns_resources(self) -> bool:
        cls = type(self)
        return cls.startup is not LLMLayer.startup or cls.shutdown is not LLMLayer.shutdown


class RequestIds:
    """A random prefix and a counter: unique ids without a syscall per request (os.urandom
    per request showed in profiles). An identifier, not a secret."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._count = itertools.count(1)

    def for_scope(self, scope: Scope) -> str:
        given = header(scope, b"x-request-id")
        if given is not None and _REQUEST_ID.fullmatch(given):
            return given.decode("ascii")
        return self.new()

    def new(self) -> str:
        """An id no client chose (for leases and slots that must not collide)."""
        return f"{self._prefix}{next(self._count):012x}"


async def run_exchange(
    config: Config,
    endpoint: Route,
    scope: Scope,
    receive: Receive,
    send: Send,
    handler: Any,
    request_id: str,
) -> None:
    name, method, target = endpoint
    ctx = LLMContext(request_id=request_id, config=config, endpoint=name, grant=grant_for(name), model=target)
    state = scope.get("state")
    if state is None:
        scope["state"] = state = {}
    state["llm"] = ctx

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            ctx.response_started = True
            ctx.status = message["status"]
            message["headers"] = [*message.get("headers", ()), *response_headers(ctx)]
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            ctx.completed = True
        await send(message)

    disconnected = asyncio.Event()
    loop = asyncio.get_running_loop()
    watchers: list[asyncio.Task[None]] = []
    start_watching: asyncio.Handle | None = None
    try:
        if scope["method"] != method:
            raise InvalidRequest(
                f"Use {method} for this endpoint.",
                status=405,
                code="method_not_allowed",
                headers=[(b"allow", method.encode())],
            )
        if method in ("POST", "PATCH"):  # PATCH: the admin API's partial updates
            check_content_type(scope)
            try:
                async with asyncio.timeout(config.server.body_timeout_s):
                    ctx.body = await read_body(scope, receive, config.server.max_body_bytes)
            except TimeoutError:
                raise ProxyError(
                    "The request body did not arrive in time.", status=408, code="request_timeout"
                ) from None
            if name in INFERENCE or name in SURFACES:
                ctx.payload = parse_json(ctx.body)
                if name in SURFACES:  # another API's format: a chat request from here inward,
                    send = SURFACES[name](ctx, scope, send)  # and its answers translated back
                parsed = validate(ctx.endpoint, ctx.payload)
                ctx.model, ctx.stream, ctx.include_usage = parsed.model, parsed.stream, parsed.include_usage
                ctx.needs, ctx.prompt_tokens_estimate = parsed.needs, parsed.prompt_tokens_estimate
            elif ctx.body.strip():
                ctx.payload = parse_json(ctx.body)
        if ctx.model is not None:  # the one place the model named is resolved
            ctx.requested = ctx.entry = config.catalog.resolve(ctx.model)
        task = asyncio.current_task()

        def watch() -> None:
            watchers.append(loop.create_task(_watch_disconnect(receive, disconnected, ctx, task)))

        # The watcher starts on the loop's next turn, that is once the handler first waits:
        # an answer made without waiting (a cache hit in memory, a refusal) never needs one,
        # and a task made and cancelled for every request was ~4% of a hit's time in process.
        start_watching = loop.call_soon(watch)
        await handler(ctx, scope, _replay(ctx.body, disconnected), send_with_headers)
    except ProxyError as exc:
        await _fail(ctx, exc, send_with_headers)
    except ClientDisconnected:
        ctx.disconnected = True
    except asyncio.CancelledError:
        if not ctx.disconnected:
            raise
        # Our own watcher cancelled the request because the client left: done, not an error.
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()
    except Exception:
        log.exception("unhandled error in request %s", ctx.request_id)
        await _fail(ctx, InternalError(f"Internal error (request id {ctx.request_id})."), send_with_headers)
    finally:
        if start_watching is not None:
            start_watching.cancel()
        for watcher in watchers:
            watcher.cancel()


async def _fail(ctx: LLMContext, exc: ProxyError, send: Send) -> None:
    if ctx.response_started:
        # Too late for a status: the layer that streamed has already ended its stream.
        log.warning("request %s failed after the response started: %s", ctx.request_id, exc.code)
        return
    ctx.error = exc
    await send_error(send, exc)


def response_headers(ctx: LLMContext) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-request-id", ctx.request_id.encode())]
    if ctx.deployment is not None:
        headers.append((b"x-llm-deployment", ctx.deployment.id.encode()))
        headers.append((b"x-llm-attempts", str(ctx.attempts).encode()))
    if ctx.cache_status is not None:
        headers.append((b"x-cache", ctx.cache_status.encode()))
        if ctx.cache_kind is not None:
            headers.append((b"x-cache-kind", ctx.cache_kind.encode()))
    headers.extend(ctx.response_headers)
    return headers


def _replay(body: bytes, disconnected: asyncio.Event) -> Receive:
    """Hand the body inward once, then report the disconnect when it happens."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    return receive


async def _watch_disconnect(
    receive: Receive, disconnected: asyncio.Event, ctx: LLMContext, task: asyncio.Task[Any] | None
) -> None:
    # ASGI servers below spec 2.4 tell of a gone client only through `receive`: watch it, and
    # cancel the request so the upstream call is closed at once (LiteLLM #13774).
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
    disconnected.set()
    # Hypercorn also reports a disconnect after every completed response: not a client leaving.
    if not ctx.completed:
        ctx.disconnected = True
        if task is not None:
            task.cancel()
