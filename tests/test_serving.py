"""`asgi-llm serve` as an operator sees it: drain on SIGTERM, access log, workers, limits.

What depends on the HTTP server (its parser, shutdown, processes) runs on each of them
(`server`); the rest on the default one.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time

import httpx2
import pytest

from tests.conftest import upstream_model
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.harness import SERVERS, ProxyServer
from tests.waiting import wait_until

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(params=SERVERS)
def server(request):
    return request.param


def test_sigterm_drains_then_ends_long_streams_with_an_error_event(tmp_path, server, request):
    if server == "granian":
        reason = "granian has no hook between SIGTERM and closing connections (docs/usage.md)"
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    with FakeUpstream("slow") as up:
        up.default = Behavior(chunks=40, chunk_delay_s=0.1)  # 4 s: outlives the drain
        proxy = ProxyServer(
            {"models": [upstream_model("m", up.base_url)]},
            tmp_path,
            extra_args=("--drain-timeout", "1"),
            server=server,
        )
        results: dict[str, str] = {}

        def read(name: str, chunks: int) -> None:
            up_body = {"model": "m", "messages": USER, "stream": True}
            try:
                with httpx2.stream(
                    "POST", proxy.base_url + "/chat/completions", json=up_body, timeout=15
                ) as response:
                    results[name] = response.read().decode()
            except httpx2.TransportError as exc:  # the stream was cut, not ended
                results[name] = repr(exc)

        up.script(Behavior(chunks=5, chunk_delay_s=0.1))  # 0.5 s: finishes within the drain
        short = threading.Thread(target=read, args=("short", 5))
        short.start()
        wait_until(lambda: len(up.requests) == 1, message="the short stream upstream")  # it took the script
        long = threading.Thread(target=read, args=("long", 40))
        long.start()
        wait_until(lambda: len(up.requests) == 2, message="the long stream upstream")
        started = time.monotonic()
        proxy.process.send_signal(signal.SIGTERM)
        short.join(10)
        long.join(10)
        proxy.process.wait(10)
        proxy.stop()
        assert results["short"].rstrip().endswith("data: [DONE]")
        assert '"code":"server_shutdown"' in results["long"] and "[DONE]" not in results["long"]
        assert time.monotonic() - started < 5
        # new connections are refused once draining started
        try:
            httpx2.get(proxy.root_url + "/healthz", timeout=1)
            raise AssertionError("still accepting after SIGTERM")
        except httpx2.TransportError:
            pass


def test_json_access_log_has_one_line_per_request_and_no_query(tmp_path, server):
    with ProxyServer(None, tmp_path, extra_args=("--log-format", "json"), server=server) as proxy:
        httpx2.get(proxy.root_url + "/v1/models?api_key=sk-leakme-123456&x=1")
        httpx2.post(proxy.base_url + "/chat/completions", json={"model": "mock-1", "messages": USER})
        for path in ("/v1/models", "/v1/chat/completions"):
            _access_lines(proxy, path, 1)  # each is written after its response
        lines = [json.loads(line) for line in proxy.log().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "asgi_llm.access" and line["path"] != "/healthz"]
    assert [(a["method"], a["path"], a["status"]) for a in access] == [
        ("GET", "/v1/models", 200),
        ("POST", "/v1/chat/completions", 200),
    ]
    assert all(a["request_id"] for a in access)
    assert "leakme" not in proxy.log()


def _access_lines(server: ProxyServer, path: str, count: int) -> list[dict]:
    """The access lines of `path`, once there are `count` (one is written when the server
    closes the stream)."""

    def found() -> list[dict] | None:
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        found = [a for a in lines if a["logger"] == "asgi_llm.access" and a["path"] == path]
        return found if len(found) >= count else None

    return wait_until(found, interval=0.05, message=f"{count} access lines of {path}")


def test_access_log_of_an_abandoned_stream_has_status_id_and_client_gone(tmp_path, server):
    slow = {
        "name": "mock-1",
        "deployments": [{"id": "m", "provider": "mock", "model": "mock-1", "mock": {"chunk_delay_ms": 200}}],
    }
    with ProxyServer(
        {"models": [slow]}, tmp_path, extra_args=("--log-format", "json"), server=server
    ) as proxy:
        body = {
            "model": "mock-1",
            "messages": [{"role": "user", "content": "one two three four five"}],
            "stream": True,
        }
        with httpx2.stream("POST", proxy.base_url + "/chat/completions", json=body, timeout=10) as response:
            sent_id = response.headers["x-request-id"]
            next(response.iter_bytes())  # the first event, then the client leaves
        (line,) = _access_lines(proxy, "/v1/chat/completions", 1)
        assert (line["status"], line["request_id"], line["client_gone"]) == (200, sent_id, True)


def test_every_access_line_has_a_request_id_the_client_saw(tmp_path, server):
    with ProxyServer(None, tmp_path, extra_args=("--log-format", "json"), server=server) as proxy:
        seen = {path: httpx2.get(proxy.root_url + path) for path in ("/healthz", "/metrics", "/nope")}
        for path, response in seen.items():  # the harness's readiness probes are logged too
            (line,) = wait_until(
                lambda path=path, sent=response.headers["x-request-id"]: [
                    a for a in _access_lines(proxy, path, 1) if a["request_id"] == sent
                ],
                message=f"the access line of {path} with the id its client saw",
            )
            assert (line["status"], line["client_gone"]) == (response.status_code, False)


@pytest.mark.parametrize("server", ["hypercorn", "granian"])  # uvicorn has no HTTP/2
def test_http2_with_prior_knowledge_answers_and_streams(tmp_path, server):
    """HTTP/2 where the server offers it: cleartext h2 (prior knowledge) on the same port."""
    with (
        ProxyServer(None, tmp_path, server=server) as proxy,
        httpx2.Client(http1=False, http2=True) as client,
    ):
        body = {"model": "mock-1", "messages": USER}
        reply = client.post(proxy.base_url + "/chat/completions", json=body)
        assert reply.http_version == "HTTP/2" and reply.status_code == 200
        assert reply.json()["choices"][0]["message"]["content"]
        with client.stream(
            "POST", proxy.base_url + "/chat/completions", json={**body, "stream": True}
        ) as stream:
            assert stream.http_version == "HTTP/2"
            events = [line for line in stream.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]" and len(events) > 2


def test_two_workers_share_the_port(tmp_path, server):
    with ProxyServer(None, tmp_path, workers=2, server=server) as proxy:
        for _ in range(20):
            response = httpx2.post(
                proxy.base_url + "/chat/completions", json={"model": "mock-1", "messages": USER}
            )
            assert response.status_code == 200


def test_oversized_headers_are_refused(tmp_path, server):
    with ProxyServer(None, tmp_path, server=server) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
            reply = sock.recv(100)
        assert reply.startswith(b"HTTP/1.1 431")
        assert httpx2.get(proxy.root_url + "/healthz").status_code == 200


def test_slow_body_gets_408_and_the_server_keeps_serving(tmp_path, server):
    with ProxyServer(
        {
            "models": [{"name": "m", "deployments": [{"id": "m", "provider": "mock", "model": "m"}]}],
            "server": {"body_timeout_s": 0.5},
        },
        tmp_path,
        server=server,
    ) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b'content-type: application/json\r\ncontent-length: 100\r\n\r\n{"mo'
            )
            sock.settimeout(5)
            reply = sock.recv(200)
        assert reply.startswith(b"HTTP/1.1 408")
        assert httpx2.get(proxy.root_url + "/healthz").status_code == 200


def test_smuggling_attempts_are_refused(tmp_path, server):
    if server == "granian":
        pytest.skip("granian frames CL+TE by the chunked coding: tests/test_hygiene.py says how")
    with ProxyServer(None, tmp_path, server=server) as proxy:
        for attack in (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/config HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
            b"Content-Length: 40\r\n\r\nabcd",
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
                sock.sendall(attack)
                sock.settimeout(5)
                reply = sock.recv(4096)
            assert reply.startswith((b"HTTP/1.1 4", b"HTTP/1.1 501")), reply[:60]  # 501: unknown TE
            assert reply.count(b"HTTP/1.1") == 1  # no second, smuggled response
        assert httpx2.get(proxy.root_url + "/healthz").status_code == 200


def test_an_admin_reload_reaches_every_worker(tmp_path):
    """`serve --workers 2` with the file watcher off: POST /admin/config/reload lands on one
    worker, which has the parent send SIGHUP to all; every worker then serves the new file."""
    from asgi_llm.auth import hash_key

    path = tmp_path / "proxy.json"

    def write(models):
        path.write_text(
            json.dumps(
                {
                    "models": [
                        {"name": m, "deployments": [{"id": m, "provider": "mock", "model": m}]}
                        for m in models
                    ],
                    "reload": {"watch": False},
                    "auth": {
                        "api_keys": [
                            {"id": "root", "key_sha256": hash_key("sk-root-admin-1"), "roles": ["admin"]}
                        ],
                        "roles": {"admin": {"models": ["*"], "endpoints": ["*"], "admin": True}},
                    },
                }
            )
        )

    write(["old-model"])
    admin = {"authorization": "Bearer sk-root-admin-1"}
    with ProxyServer(path, tmp_path, workers=2) as server:
        write(["old-model", "new-model"])
        reply = httpx2.post(server.root_url + "/admin/config/reload", headers=admin)
        assert reply.status_code == 200, reply.text
        served: dict[int, tuple[str, ...]] = {}  # worker pid -> the models it serves
        deadline = time.monotonic() + 15
        while len(served) < 2 or set(served.values()) != {("new-model", "old-model")}:
            assert time.monotonic() < deadline, f"workers disagree or one never answered: {served}"
            with httpx2.Client() as client:  # one connection: both answers from one worker
                pid = client.get(server.root_url + "/admin/stats", headers=admin).json()["pid"]
                models = client.get(server.base_url + "/models", headers=admin).json()["data"]
            served[pid] = tuple(sorted(m["id"] for m in models))
            time.sleep(0.02)


def test_an_unfinished_head_past_the_cap_is_refused(tmp_path, server):
    """A head that never ends must not grow a worker's memory: httptools and hyper buffer
    any size, so the server closes the connection once 32 KiB have come (uvicorn: 431)."""
    with ProxyServer(None, tmp_path, server=server) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            reply = b""
            try:
                for _ in range(100):  # 100 x 1 KiB header lines, no blank line
                    sock.sendall(b"X-Pad: " + b"a" * 1017 + b"\r\n")
                sock.settimeout(5)
                reply = sock.recv(100)
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed on us: refused all the same
        assert reply == b"" or reply.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), reply
        assert httpx2.get(proxy.root_url + "/healthz").status_code == 200
