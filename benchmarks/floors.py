"""Floors: the least a Python forwarder does, to compare the proxy against.

Each floor is a Starlette app whose POST /v1/chat/completions (and the SSE variant
/sse/v1/chat/completions) reads the body, sends it to the upstream and returns the
upstream's status, body and content type (streamed through when it is an event stream):

- ``httpx2``         -- ``httpx2.AsyncClient`` with its default transport
- ``aiohttp``        -- one shared ``aiohttp.ClientSession``
- ``httpx2-aiohttp`` -- ``httpx2.AsyncClient(transport=AiohttpTransport(...))``: the
  httpx2 API on top of aiohttp, to see what the API layer costs

Run one:  python -m benchmarks.floors aiohttp --port 9001 --upstream http://127.0.0.1:9000

hypercorn serves it in this process (``hypercorn.asyncio.serve``: what hypercorn's
worker does with ``workers=1``, without the extra supervisor process), on uvloop by
default (``--loop asyncio`` for the standard loop). ``--server uvicorn`` serves it with
uvicorn on httptools instead (``uvicorn.Server.serve`` in this process, no access log):
the server ``asgi-llm serve`` runs by default.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import httpx2
import uvicorn
from httpx_aiohttp.httpx2 import AiohttpTransport
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from benchmarks.upstream import CHAT_PATH, SSE_PATH

UPSTREAM_HEADERS = {
    "content-type": "application/json",
    "authorization": "Bearer sk-bench",
}
MAX_CONNECTIONS = 1000
TIMEOUT_S = 30.0


def _is_sse(content_type: str) -> bool:
    return content_type.startswith("text/event-stream")


def _app(lifespan: Callable, forward: Callable) -> Starlette:
    routes = [Route(path, forward, methods=["POST"]) for path in (CHAT_PATH, SSE_PATH)]
    return Starlette(routes=routes, lifespan=lifespan)


# --- (a) httpx2, default transport; (c) httpx2 over aiohttp ----------------------------


def httpx2_app(upstream: str, *, aiohttp_transport: bool = False) -> Starlette:
    limits = httpx2.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict]:
        transport = AiohttpTransport(limits=limits) if aiohttp_transport else None
        timeout = httpx2.Timeout(TIMEOUT_S)
        async with httpx2.AsyncClient(
            base_url=upstream, limits=limits, timeout=timeout, transport=transport
        ) as client:
            yield {"client": client}

    async def forward(request: Request) -> Response:
        client: httpx2.AsyncClient = request.state.client
        body = await request.body()
        upstream_request = client.build_request(
            "POST", request.url.path, content=body, headers=UPSTREAM_HEADERS
        )
        resp = await client.send(upstream_request, stream=True)
        headers = {"content-type": resp.headers.get("content-type", "application/json")}
        if _is_sse(headers["content-type"]):
            return StreamingResponse(
                resp.aiter_raw(),
                resp.status_code,
                headers,
                background=BackgroundTask(resp.aclose),
            )
        content = await resp.aread()  # also closes the response
        return Response(content, resp.status_code, headers)

    return _app(lifespan, forward)


# --- (b) aiohttp ----------------------------------------------------------------------


def aiohttp_app(upstream: str) -> Starlette:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[dict]:
        connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        async with aiohttp.ClientSession(upstream, connector=connector, timeout=timeout) as session:
            yield {"session": session}

    async def forward(request: Request) -> Response:
        session: aiohttp.ClientSession = request.state.session
        body = await request.body()
        resp = await session.post(request.url.path, data=body, headers=UPSTREAM_HEADERS)
        headers = {"content-type": resp.headers.get("content-type", "application/json")}
        if _is_sse(headers["content-type"]):
            return StreamingResponse(
                resp.content.iter_any(),
                resp.status,
                headers,
                background=BackgroundTask(resp.release),
            )
        content = await resp.read()
        resp.release()
        return Response(content, resp.status, headers)

    return _app(lifespan, forward)


APPS: dict[str, Callable[[str], Starlette]] = {
    "httpx2": httpx2_app,
    "aiohttp": aiohttp_app,
    "httpx2-aiohttp": lambda upstream: httpx2_app(upstream, aiohttp_transport=True),
}


# --- serving --------------------------------------------------------------------------


def hypercorn_config(port: int, keep_alive_max_requests: int) -> Config:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    config.backlog = 4096
    # hypercorn closes a keep-alive connection after 1000 requests by default.
    config.keep_alive_max_requests = keep_alive_max_requests
    return config


def uvicorn_server(app: Starlette, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        port=port,
        http="httptools",
        ws="none",
        lifespan="on",
        access_log=False,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
        backlog=4096,
    )
    return uvicorn.Server(config)


def run(app: Starlette, port: int, args: argparse.Namespace) -> None:
    loop_factory = None
    if args.loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    if args.server == "uvicorn":
        main = uvicorn_server(app, port).serve()
    else:
        main = serve(app, hypercorn_config(port, args.keep_alive_max_requests))  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main)  # returns on SIGTERM / SIGINT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(APPS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="origin, e.g. http://127.0.0.1:9000")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--server", choices=("hypercorn", "uvicorn"), default="hypercorn")
    parser.add_argument("--keep-alive-max-requests", type=int, default=1_000_000)
    args = parser.parse_args()
    app = APPS[args.kind](args.upstream.rstrip("/"))
    run(app, args.port, args)


if __name__ == "__main__":
    main()
