"""The upstream every target ends at: fixed OpenAI-style responses, as cheap as possible.

nginx (Debian's package) serves them with ``return 200 '...'`` from its own generated
config in a temp dir; when nginx is not installed a tiny aiohttp server stands in
(``python -m benchmarks.upstream --port P``), and the report says so.

Routes (POST; nginx's ``return`` in a ``location =`` block answers any method):

- ``/v1/chat/completions``     -> ``CHAT_COMPLETION`` (application/json, ~400 bytes)
- ``/sse/v1/chat/completions`` -> ``SSE_BODY`` (text/event-stream: 20 chunks, a usage
  chunk, ``data: [DONE]``; sent at once, which is fine for per-chunk CPU costs)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import uvloop
from aiohttp import web

from benchmarks.procs import Child, ProcessGroup, free_port, wait_for_port

MODEL = "bench-model"
CHAT_PATH = "/v1/chat/completions"
SSE_PATH = "/sse/v1/chat/completions"


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


CHAT_COMPLETION = _dumps(
    {
        "id": "chatcmpl-bench0123456789abcdefghijklmnopq",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "system_fingerprint": "fp_bench01",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello! How can I help you today? I am a fixed benchmark reply.",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 14, "total_tokens": 23},
    }
)


SSE_CHUNKS = 20


def _sse_body(n_chunks: int = SSE_CHUNKS) -> str:
    base = {
        "id": "chatcmpl-bench0123456789abcdefghijklmnopq",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
        "system_fingerprint": "fp_bench01",
    }
    events = []
    for i in range(n_chunks):
        if i == n_chunks - 1:
            choice = {
                "index": 0,
                "delta": {},
                "logprobs": None,
                "finish_reason": "stop",
            }
        else:
            delta = {"content": f"word{i} "}
            if i == 0:
                delta = {"role": "assistant", "content": "Hello "}
            choice = {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": None,
            }
        events.append({**base, "choices": [choice]})
    usage = {
        "prompt_tokens": 9,
        "completion_tokens": n_chunks - 1,
        "total_tokens": 8 + n_chunks,
    }
    events.append({**base, "choices": [], "usage": usage})
    return "".join(f"data: {_dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


SSE_BODY = _sse_body()

# The body wrk sends (non-streaming and streaming), and its headers.
REQUEST_BODY = _dumps({"model": MODEL, "messages": [{"role": "user", "content": "Say hello"}]})
STREAM_REQUEST_BODY = _dumps(
    {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
)
REQUEST_HEADERS = {
    "Content-Type": "application/json",
    "Authorization": "Bearer sk-anything",
}


def _nginx_string(text: str) -> str:
    """Quote ``text`` for nginx.conf (nginx unescapes \\n, \\', \\\\ in quoted strings)."""
    if "$" in text:
        raise ValueError("nginx would expand '$' as a variable")
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def _nginx_return(name: str, text: str, limit: int = 3000) -> str:
    """``return 200 ...;`` for ``text``, split over ``set`` variables when it is long.

    nginx refuses a config token over 4 KiB ("too long parameter"); the SSE body is
    longer, so it is cut at line ends into variables that ``return`` concatenates.
    """
    parts: list[str] = []
    for line in text.splitlines(keepends=True):
        if parts and len(parts[-1]) + len(line) <= limit:
            parts[-1] += line
        else:
            parts.append(line)
    if len(parts) == 1:
        return f"return 200 {_nginx_string(text)};"
    sets = [f"set ${name}{i} {_nginx_string(part)};" for i, part in enumerate(parts)]
    joined = "".join(f"${name}{i}" for i in range(len(parts)))
    return "\n            ".join([*sets, f'return 200 "{joined}";'])


def nginx_conf(workdir: Path, port: int) -> str:
    return f"""\
daemon off;
master_process on;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    server_tokens off;
    charset off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;

    server {{
        listen 127.0.0.1:{port} backlog=4096;

        location = {CHAT_PATH} {{
            default_type application/json;
            {_nginx_return("chat", CHAT_COMPLETION)}
        }}

        location = {SSE_PATH} {{
            default_type text/event-stream;
            add_header Cache-Control no-cache;
            {_nginx_return("sse", SSE_BODY)}
        }}

        location / {{
            default_type application/json;
            return 404 '{{"error":{{"message":"not found","type":"invalid_request_error"}}}}';
        }}
    }}
}}
"""


@dataclass
class Upstream:
    kind: str  # "nginx 1.22.1 (...)" or "aiohttp fallback (...)"
    port: int
    child: Child

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def nginx_version(binary: str) -> str:
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    return (out.stderr or out.stdout).strip().split("/")[-1]


def find_nginx() -> str | None:
    candidates = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
    return shutil.which("nginx") or next((p for p in candidates if Path(p).exists()), None)


def start_upstream(
    procs: ProcessGroup,
    workdir: Path,
    cpus: str | None,
    python: str,
    kind: str = "auto",
) -> Upstream:
    """Start nginx (``kind`` "nginx", or "auto" when it is installed) or else the aiohttp
    fallback, on a free port, and wait until it listens."""
    port = free_port()
    binary = find_nginx() if kind in ("auto", "nginx") else None
    if kind == "nginx" and binary is None:
        raise RuntimeError("nginx is not installed: apt-get install -y nginx")
    if binary is not None:
        ngx_dir = workdir / "nginx"
        ngx_dir.mkdir(parents=True, exist_ok=True)
        conf = ngx_dir / "nginx.conf"
        conf.write_text(nginx_conf(ngx_dir, port))
        argv = [
            binary,
            "-p",
            f"{ngx_dir}/",
            "-c",
            str(conf),
            "-e",
            str(ngx_dir / "error.log"),
        ]
        child = procs.start("nginx", argv, cpus=cpus)
        description = f"nginx {nginx_version(binary)} (1 worker, return 200)"
    else:
        argv = [python, "-m", "benchmarks.upstream", "--port", str(port)]
        child = procs.start("upstream-aiohttp", argv, cpus=cpus, cwd=Path(__file__).parents[1])
        why = "asked for" if kind == "aiohttp" else "nginx is not installed"
        description = f"aiohttp fallback ({why}), 1 process on uvloop"
    wait_for_port(child, port)
    return Upstream(kind=description, port=port, child=child)


# --- fallback server ----------------------------------------------------------------


def fallback_app() -> web.Application:
    """The same two routes on aiohttp.web, for machines without nginx."""
    chat, sse = CHAT_COMPLETION.encode(), SSE_BODY.encode()

    async def chat_handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=chat, content_type="application/json")

    async def sse_handler(request: web.Request) -> web.Response:
        await request.read()
        headers = {"Cache-Control": "no-cache"}
        return web.Response(body=sse, content_type="text/event-stream", headers=headers)

    app = web.Application()
    app.router.add_post(CHAT_PATH, chat_handler)
    app.router.add_post(SSE_PATH, sse_handler)
    return app


async def serve_fallback(port: int) -> None:
    runner = web.AppRunner(fallback_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    try:
        await asyncio.Event().wait()  # until SIGTERM ends the process
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="fallback upstream (aiohttp) for the benchmark")
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_fallback(port))


if __name__ == "__main__":
    main()
