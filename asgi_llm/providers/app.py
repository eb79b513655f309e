"""ProviderApp: the terminal ASGI app. One attempt against one deployment per call.

A failure before the first response byte is raised (the router may try elsewhere); after
it, a stream can only end with one error event and no `[DONE]`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from asgi_llm.accounting import delivered_usage, deployment_cost
from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager
from asgi_llm.config.schema import Deployment
from asgi_llm.context import LLMContext
from asgi_llm.errors import InvalidRequest, ModelNotFound, UpstreamError, UpstreamTimeout, error_body
from asgi_llm.exchange import LLMLayer
from asgi_llm.health import HealthRegistry
from asgi_llm.providers.base import Provider, StreamAdapter, bad_response, counts_tokens
from asgi_llm.providers.clients import UpstreamClients
from asgi_llm.providers.registry import provider_for
from asgi_llm.providers.transport import TransportError, TransportTimeout, UpstreamResponse
from asgi_llm.request import ROUTED, route_path
from asgi_llm.responses import send_error, send_json, start_event_stream
from asgi_llm.sse import SSEError, encode_event
from asgi_llm.translate.count_tokens import estimate_input_tokens
from asgi_llm.types import Receive, Scope, Send

if TYPE_CHECKING:
    from asgi_llm.providers.observe import AttemptObserver, ObservedAttempt

log = logging.getLogger("asgi_llm.providers")

MAX_ERROR_BODY = 64 * 1024


def stream_error_event(message: str, code: str) -> bytes:
    """The one event that ends a stream which failed after its first byte (no `[DONE]`)."""
    return encode_event(error_body(message, "upstream_error", code))


async def _read_limited(response: UpstreamResponse, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ValueError("response too large")
        chunks.append(chunk)
    return b"".join(chunks)


class ProviderApp(LLMLayer):
    """Forwards OpenAI-compatible requests; serves /v1/models, /healthz and /readyz."""

    kind = "provider"

    def __init__(
        self,
        *,
        config: Config | ConfigManager,
        transport_factory: Any = None,
        clients: UpstreamClients | None = None,
        health: HealthRegistry | None = None,
        tracer: AttemptObserver | None = None,
    ) -> None:
        """`clients` (the upstream pools) and `health` (what /readyz reports as degraded) are
        given by `build_app`; built alone, the app makes its own (`transport_factory` then
        shapes its pools). With a `tracer`, each attempt is a span (asgi_llm/tracing/)."""
        super().__init__(self._not_found, config=config)
        for deployment in self.configs.current.catalog.deployments.values():
            provider_for(deployment.provider)  # fail at construction, with the name
        self._owns_clients = clients is None
        self.clients = clients if clients is not None else UpstreamClients(transport_factory)
        self.health = health if health is not None else HealthRegistry()
        self.tracer = tracer
        self._streams: set[asyncio.Task[Any]] = set()  # tasks relaying a stream now
        self._ending = False
        self._in_flight: dict[str, int] = {}  # attempts running per deployment
        self._retiring: set[str] = set()  # removed by a reload: closed once idle
        self.configs.listeners.append(self._config_changed)

    def _config_changed(self, old: Config, new: Config) -> None:
        removed = set(old.catalog.deployments) - set(new.catalog.deployments)
        changed = {
            d
            for d in set(old.catalog.deployments) & set(new.catalog.deployments)
            if old.catalog.deployments[d] != new.catalog.deployments[d]
        }
        self._retiring |= removed | changed  # a changed deployment gets a fresh pool too
        for deployment_id in list(self._retiring):
            self._retire_if_idle(deployment_id)

    def _retire_if_idle(self, deployment_id: str) -> None:
        if deployment_id in self._retiring and not self._in_flight.get(deployment_id):
            self._retiring.discard(deployment_id)
            try:
                asyncio.get_running_loop().create_task(self.clients.close(deployment_id))
            except RuntimeError:  # no loop (a reload outside the server): close on next use
                pass

    def drain(self, timeout: float) -> None:
        """Server shutdown: streams still running after `timeout` end with an error event."""
        asyncio.get_running_loop().call_later(timeout, self._end_streams)

    def _end_streams(self) -> None:
        self._ending = True
        for task in list(self._streams):
            task.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await super().__call__(scope, receive, send)

    async def startup(self) -> None:
        pass  # clients are made on first use, so mounting without lifespan still works

    async def shutdown(self) -> None:
        if self._owns_clients:  # shared pools are closed by whoever made them (build_app)
            await self.clients.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def pass_through(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope)  # inside a mount (`/llm/healthz`) as well as at the root
        if path == "/healthz":
            await send_json(send, 200, b'{"status":"ok"}')
        elif path == "/readyz":
            ready = bool(self.configs.current.models)
            report: dict[str, Any] = {"status": "ready" if ready else "no models"}
            degraded = await self.health.not_ready()  # shared backends down (auth: key_store)
            if degraded:
                report["degraded"] = degraded
            await send_json(send, 200 if ready else 503, orjson.dumps(report))
        else:
            await self._not_found(scope, receive, send)

    @staticmethod
    async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
        await send_error(send, InvalidRequest("Unknown URL.", status=404, code="unknown_url"))

    async def handle(self, ctx: LLMContext, scope: Scope, receive: Receive, send: Send) -> None:
        if ctx.endpoint == "models":
            await send_json(send, 200, self._models(ctx) if ctx.model is None else self._model(ctx))
            return
        if ctx.endpoint not in ROUTED:  # e.g. an admin path with no admin layer mounted
            await self._not_found(scope, receive, send)
            return
        deployment = ctx.deployment
        if deployment is None:  # no router in front: the model's first deployment, once
            entry = ctx.entry
            if entry is None:
                raise ModelNotFound(ctx.model or "")
            ctx.entry, ctx.deployment, ctx.attempts = entry, entry.deployments[0], 1
            deployment = ctx.deployment
        if ctx.endpoint == "count_tokens" and not counts_tokens(
            provider_for(deployment.provider), deployment
        ):
            # No counting API upstream: the proxy's estimate, said to be one.
            ctx.add_header(b"x-llm-token-estimate", b"true")
            request = ctx.messages.request if ctx.messages is not None else ctx.payload
            await send_json(send, 200, orjson.dumps({"input_tokens": estimate_input_tokens(request)}))
            return
        if self.tracer is None or ctx.config.tracing is None:
            await self.attempt(ctx, deployment, send)
            return
        with self.tracer.attempt_span(ctx, deployment) as traced:
            await self.attempt(ctx, deployment, send, traced)

    def _models(self, ctx: LLMContext) -> bytes:
        principal = ctx.principal
        data = [
            _model_object(entry.name)
            for entry in ctx.config.catalog.entries
            if principal is None or principal.may_use(entry)
        ]
        return orjson.dumps({"object": "list", "data": data})

    @staticmethod
    def _model(ctx: LLMContext) -> bytes:
        # A model the caller may not use is as unknown as one that does not exist: the
        # answer must not reveal which names are served.
        entry = ctx.requested
        if entry is None or (ctx.principal is not None and not ctx.principal.may_use(entry)):
            raise ModelNotFound(ctx.model or "")
        return orjson.dumps(_model_object(entry.name))

    async def attempt(
        self, ctx: LLMContext, deployment: Deployment, send: Send, traced: ObservedAttempt | None = None
    ) -> None:
        provider = provider_for(deployment.provider)
        # Per attempt: what the last one learnt never reaches this one's client.
        ctx.usage = ctx.stream_start_usage = ctx.parsed_answer = None
        ctx.streamed_chunks = 0
        if ctx.responses is not None:
            ctx.responses.native = False  # per attempt: the provider says if it speaks it natively
        messages = ctx.messages
        if messages is not None:
            messages.native = False
        request = provider.build(ctx, deployment)  # may refuse (400): nothing is in flight yet
        if messages is not None and not messages.native and messages.refused is not None:
            # Anthropic's own fields reach only Anthropic; anywhere else they cannot be said.
            raise messages.refused
        transport = self.clients.transport(deployment)
        if traced is not None:  # the upstream request carries the attempt span's traceparent
            transport = traced.transport(transport)
        self._in_flight[deployment.id] = self._in_flight.get(deployment.id, 0) + 1
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + deployment.timeout_s
        ctx.timings.upstream_start = time.perf_counter()
        response: UpstreamResponse | None = None
        try:
            async with asyncio.timeout_at(min(start + deployment.first_byte_timeout_s, deadline)) as timer:
                try:
                    response = await transport.send(request)
                    if 300 <= response.status_code < 400:
                        # Never followed: a redirect could point the provider key anywhere.
                        raise bad_response(deployment, "a redirect, which is not followed")
                    if response.status_code >= 400:
                        error_body = await _read_limited(response, MAX_ERROR_BODY)
                        raise provider.error(response.status_code, error_body, response.headers, deployment)
                    if ctx.stream:
                        await self._stream(ctx, deployment, provider, response, send, timer, deadline)
                    else:
                        timer.reschedule(deadline)
                        raw = await _read_limited(response, ctx.config.server.max_response_bytes)
                        out = provider.read_response(ctx, deployment, raw)
                        ctx.timings.first_byte = time.perf_counter()
                        ctx.cost_usd = deployment_cost(ctx.usage, deployment)
                        await send_json(send, 200, out)
                except TransportTimeout:
                    raise UpstreamTimeout(
                        "The upstream did not answer in time.",
                        deployment=deployment.id,
                        code="connect_timeout",
                    ) from None
                except TransportError:
                    raise UpstreamError(
                        "Could not reach the upstream.",
                        deployment=deployment.id,
                        code="upstream_connection_error",
                    ) from None
                except ValueError:  # oversized body
                    raise bad_response(deployment, "too large") from None
        except TimeoutError:
            code = "first_token_timeout" if ctx.timings.first_byte is None else "upstream_timeout"
            raise UpstreamTimeout(
                "The upstream did not answer in time.", deployment=deployment.id, code=code
            ) from None
        finally:
            if response is not None:
                await response.aclose()
            if ctx.stream and ctx.timings.first_byte is not None and ctx.usage is None:
                # The stream began and ended (cut, failed, or left by its client) before its
                # usage was said: it is charged what was delivered (accounting.py).
                ctx.usage = delivered_usage(ctx)
                ctx.cost_usd = deployment_cost(ctx.usage, deployment)
            ctx.timings.end = time.perf_counter()
            self._in_flight[deployment.id] -= 1
            if not self._in_flight[deployment.id]:
                del self._in_flight[deployment.id]
                self._retire_if_idle(deployment.id)

    async def _stream(
        self,
        ctx: LLMContext,
        deployment: Deployment,
        provider: Provider,
        response: UpstreamResponse,
        send: Send,
        timer: asyncio.Timeout,
        deadline: float,
    ) -> None:
        adapter = provider.stream(ctx, deployment)
        # SSE, unless the adapter reads another framing (Bedrock's binary event stream).
        expected = adapter.content_type
        content_type = response.headers.get("content-type") or ""
        if not content_type.startswith(expected):
            raise bad_response(deployment, f"expected {expected}, got {content_type[:40]!r}")
        chunks = response.aiter_bytes()
        # Before the first byte reaches the client, any failure may still fail over.
        first = b""
        try:
            while not first:
                first = adapter.feed(await anext(chunks))
        except StopAsyncIteration:
            raise bad_response(deployment, "the stream ended before any event") from None
        except SSEError as exc:
            raise bad_response(deployment, str(exc)) from None
        ctx.timings.first_byte = time.perf_counter()
        await start_event_stream(send)
        await send({"type": "http.response.body", "body": first, "more_body": True})
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        try:
            await self._relay(ctx, deployment, adapter, chunks, send, timer, deadline)
        except asyncio.CancelledError:
            if not self._ending or ctx.disconnected:
                raise
            task.uncancel()  # our own drain: end the stream in words, not by a dropped socket
            ctx.stream_failure = "server_shutdown"
            await send(
                {
                    "type": "http.response.body",
                    "more_body": False,
                    "body": stream_error_event(
                        "The server is shutting down; retry the request.", "server_shutdown"
                    ),
                }
            )
        finally:
            self._streams.discard(task)

    async def _relay(
        self,
        ctx: LLMContext,
        deployment: Deployment,
        adapter: StreamAdapter,
        chunks: AsyncIterator[bytes],
        send: Send,
        timer: asyncio.Timeout,
        deadline: float,
    ) -> None:
        timer.reschedule(None)  # from here on: idle and total limits, not the first-byte one
        loop = asyncio.get_running_loop()
        idle = deployment.idle_timeout_s
        failure: tuple[str, str] | None = None
        try:
            async with asyncio.timeout(None) as guard:
                while not adapter.done:
                    guard.reschedule(min(loop.time() + idle, deadline))
                    try:
                        chunk = await anext(chunks)
                    except StopAsyncIteration:
                        break
                    # A slow client is not an idle upstream: only the total cap applies to send.
                    guard.reschedule(deadline)
                    out = adapter.feed(chunk)
                    if out:
                        await send({"type": "http.response.body", "body": out, "more_body": True})
            if not adapter.done:
                failure = ("The upstream stream ended early.", "stream_interrupted")
        except (TransportError, SSEError) as exc:
            log.warning("stream from %s broke: %s: %s", deployment.id, exc.__class__.__name__, exc)
            failure = ("The upstream stream was interrupted.", "stream_interrupted")
        except TimeoutError:
            failure = ("The upstream stream timed out.", "stream_timeout")
        if ctx.usage is None:  # ended before its usage was said: what was delivered
            ctx.usage = delivered_usage(ctx)
        ctx.cost_usd = deployment_cost(ctx.usage, deployment)
        if failure is not None:
            ctx.stream_failure = failure[1]
            await send(
                {"type": "http.response.body", "body": stream_error_event(*failure), "more_body": False}
            )
        else:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _model_object(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "asgi-llm"}
