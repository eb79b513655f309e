"""What slow, huge and vanishing peers cost a real `asgi-llm serve` (THREATS U7, U12, U13).

- U7: slow upstreams (fault proxy bandwidth) and slow client readers (1 KB/s) at once: the
  proxy's memory stays bounded (back-pressure, no queue growing with the upstream's output)
  and the event loop stays free (`/healthz` answers quickly meanwhile).
- U12: a huge upstream body is refused (502) after `server.max_response_bytes`, without the
  body ever being held in memory.
- U13: a client leaving before the first byte or mid-stream gives its concurrency slot back
  at once, and leaves no "Task exception was never retrieved" behind.

Memory is read from /proc/<pid>/status of the server process: its peak (VmHWM, reset
through /proc/<pid>/clear_refs before each measurement), not a sample that could miss it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import statistics
import time

import httpx2
import orjson
import pytest

from asgi_llm import Config, build_app
from tests.conftest import assert_error_shape, mock_model, upstream_model
from tests.fakes.faultproxy import FaultProxy
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.harness import ProxyServer
from tests.waiting import await_until

USER = [{"role": "user", "content": "hi"}]
MAX_RESPONSE_BYTES = 1024 * 1024
LOG_PROBLEMS = ("Task exception was never retrieved", "Task was destroyed", "Traceback")


@pytest.fixture(scope="module")
def up():
    with FakeUpstream("resources") as server:
        yield server


@pytest.fixture(scope="module")
def slow():
    with FakeUpstream("slow") as server:
        yield server


@pytest.fixture(scope="module")
def fp(slow):
    with FaultProxy(("127.0.0.1", int(slow.root_url.rsplit(":", 1)[1]))) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def fp_fast(up):
    """No faults: it counts the proxy's live connections to the fast upstream."""
    with FaultProxy(("127.0.0.1", int(up.root_url.rsplit(":", 1)[1]))) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def proxy(up, fp, fp_fast, tmp_path_factory):
    config = {
        "models": [
            upstream_model("fast", f"http://127.0.0.1:{fp_fast.port}/v1"),
            upstream_model("conc", up.base_url),
            upstream_model("slowup", f"http://127.0.0.1:{fp.port}/v1"),
        ],
        "routing": {"retries": 0},
        "limits": {"storage": "memory://", "rules": [{"per": "global", "model": "conc", "concurrency": 1}]},
        "server": {"max_response_bytes": MAX_RESPONSE_BYTES},
    }
    with ProxyServer(config, tmp_path_factory.mktemp("resources")) as server:
        yield server
    log = server.log()  # the whole run, shutdown included
    for problem in LOG_PROBLEMS:
        assert problem not in log, f"{problem!r} in the server log:\n{log[-3000:]}"


@pytest.fixture(autouse=True)
def fresh(up, slow, fp):
    for server in (up, slow):
        server.reset()
        server.default = Behavior()
    fp.clear()


def status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS


def sse_body(events: int, content_bytes: int) -> bytes:
    event = (
        b"data: "
        + orjson.dumps(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": "a" * content_bytes}, "finish_reason": None}],
            }
        )
        + b"\n\n"
    )
    return event * events + b"data: [DONE]\n\n"


def body(model: str, stream: bool) -> dict:
    return {"model": model, "messages": USER, "stream": stream}


# -- U7 --------------------------------------------------------------------------------------

SLOW_READERS = 8
SLOW_UPSTREAMS = 4
BIG_STREAM = sse_body(4096, 1000)  # ~4.4 MB an upstream hands over as fast as it is read
RUN_S = 3.0


async def slow_reader(port: int, stop: asyncio.Event) -> int:
    """A raw client that reads 1 KB per second through a small receive buffer."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        payload = json.dumps(body("fast", True)).encode()
        await loop.sock_sendall(
            sock,
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: proxy\r\n"
            b"content-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(payload) + payload,
        )
        got = 0
        while not stop.is_set():
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 1024), 1.0)
            except TimeoutError:
                continue
            if not data:
                break
            got += len(data)
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass
        return got
    finally:
        sock.close()


async def normal_reader(client: httpx2.AsyncClient, stop: asyncio.Event) -> int:
    got = 0
    async with client.stream("POST", "/v1/chat/completions", json=body("slowup", True)) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_raw():
            got += len(chunk)
            if stop.is_set():
                break
    return got


async def test_slow_upstreams_and_slow_readers_keep_memory_bounded_and_the_loop_free(
    proxy, up, slow, fp, fp_fast
):
    pid = proxy.process.pid
    up.default = Behavior(body=BIG_STREAM, content_type="text/event-stream")
    slow.default = Behavior(body=sse_body(256, 1000), content_type="text/event-stream")
    async with httpx2.AsyncClient(base_url=proxy.root_url, timeout=10) as client:
        # Warm up: one big stream read at full speed, so buffers and pools exist already.
        async with client.stream("POST", "/v1/chat/completions", json=body("fast", True)) as r:
            assert len(await r.aread()) >= len(BIG_STREAM)
        fp.set(bandwidth=8 * 1024)
        await asyncio.sleep(0.2)  # a settling pause before a measurement: nothing to wait for
        rss_before = status_kb(pid, "RssAnon")
        reset_peak(pid)
        peak_before = status_kb(pid, "VmHWM")

        stop = asyncio.Event()
        readers = [asyncio.create_task(slow_reader(proxy.port, stop)) for _ in range(SLOW_READERS)]
        readers += [asyncio.create_task(normal_reader(client, stop)) for _ in range(SLOW_UPSTREAMS)]
        lags: list[float] = []
        started = time.monotonic()
        while time.monotonic() - started < RUN_S:
            probe = time.monotonic()
            assert (await client.get("/healthz")).status_code == 200
            lags.append(time.monotonic() - probe)
            await asyncio.sleep(0.05)
        peak = status_kb(pid, "VmHWM")
        stop.set()
        got = await asyncio.wait_for(asyncio.gather(*readers), 10)

    slow_got, fast_got = got[:SLOW_READERS], got[SLOW_READERS:]
    assert all(0 < n <= (RUN_S + 2) * 1024 for n in slow_got), slow_got  # 1 KB/s, really
    assert all(n > 1024 for n in fast_got), fast_got  # the throttled upstreams trickled through
    # Unbounded buffering would hold 8 x 4.4 MB = 35 MB of upstream output (far more as
    # Python objects); back-pressure keeps the proxy at socket-buffer sizes.
    grown_mb = (peak - peak_before) / 1024
    assert grown_mb < 16, f"peak RSS grew {grown_mb:.1f} MB"
    assert (status_kb(pid, "RssAnon") - rss_before) / 1024 < 16
    # The loop was never blocked: every /healthz answered, and quickly (the worst case also
    # pays for this test process's own threads on a shared 2-core box).
    assert statistics.median(lags) < 0.05 and max(lags) < 1.0, (statistics.median(lags), max(lags))
    # The slow readers' upstream connections are closed once their clients left.
    await await_until(
        lambda: not fp_fast.active, timeout=2, interval=0.05, message="upstream connections closed"
    )


# -- U12 -------------------------------------------------------------------------------------


def test_an_oversized_upstream_body_is_a_502_without_holding_it(proxy, up):
    pid = proxy.process.pid
    head = b'{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"content":"'
    up.default = Behavior(body=head + b"a" * (48 * 1024 * 1024) + b'"}}]}')
    reset_peak(pid)
    peak_before = status_kb(pid, "VmHWM")
    response = httpx2.post(proxy.base_url + "/chat/completions", json=body("fast", False), timeout=10)
    error = assert_error_shape(response, 502, "bad_upstream_response")
    assert "too large" in error["message"]
    grown_mb = (status_kb(pid, "VmHWM") - peak_before) / 1024
    assert grown_mb < 8, f"peak RSS grew {grown_mb:.1f} MB for a 48 MB body capped at 1 MB"
    up.default = Behavior()
    assert httpx2.post(proxy.base_url + "/chat/completions", json=body("fast", False)).status_code == 200


# -- U13 -------------------------------------------------------------------------------------


def admitted_within(proxy, seconds: float) -> float:
    """Seconds until a request to the concurrency-1 model is admitted again."""
    started = time.monotonic()
    while True:
        response = httpx2.post(proxy.base_url + "/chat/completions", json=body("conc", False))
        if response.status_code == 200:
            return time.monotonic() - started
        assert response.status_code == 429, response.text
        assert time.monotonic() - started < seconds, "the concurrency slot was not given back"
        time.sleep(0.02)


def test_leaving_mid_stream_gives_the_concurrency_slot_back_at_once(proxy, up):
    up.script(Behavior(chunks=50, chunk_delay_s=0.1))
    with httpx2.stream(
        "POST", proxy.base_url + "/chat/completions", json=body("conc", True), timeout=10
    ) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()  # kept: a dropped iterator would close the response
        next(chunks)
        held = httpx2.post(proxy.base_url + "/chat/completions", json=body("conc", False))
        assert_error_shape(held, 429)  # the slot really is taken while the stream runs
    assert admitted_within(proxy, 1.0) < 1.0
    assert up.wait_for_disconnect(timeout=2) is not None


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_leaving_before_the_first_byte_gives_the_concurrency_slot_back_at_once(proxy, up, stream):
    up.script(Behavior(delay_s=5))
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.post(
            proxy.base_url + "/chat/completions",
            json=body("conc", stream),
            timeout=httpx2.Timeout(5, read=0.3),
        )
    assert admitted_within(proxy, 1.0) < 1.0
    assert up.wait_for_disconnect(timeout=2) is not None


async def leave(app, after_bodies: int) -> tuple[int | None, int]:
    """One streamed request driven by hand: the client leaves once `after_bodies` body
    messages were sent (0: before the first byte). Returns the status (None: nothing was
    sent) and the body messages sent."""
    gone = asyncio.Event()
    status = None
    pending = [{"type": "http.request", "body": orjson.dumps(body("m", True)), "more_body": False}]
    sent = 0

    async def receive():
        if pending:
            return pending.pop()
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal sent, status
        if message["type"] == "http.response.start":
            status = message["status"]
        if message["type"] == "http.response.body":
            sent += 1
            if sent >= after_bodies:
                gone.set()

    if after_bodies == 0:
        asyncio.get_running_loop().call_later(0.01, gone.set)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "root_path": "",
        "query_string": b"",
        "client": ("127.0.0.1", 1),
        "server": ("proxy", 80),
        "scheme": "http",
        "http_version": "1.1",
        "headers": [(b"content-type", b"application/json")],
    }
    await asyncio.wait_for(app(scope, receive, send), 5)
    return status, sent


async def test_a_disconnect_leaves_no_unretrieved_task_exception(no_secrets_in_logs):
    """In process, with the garbage collector run: asyncio reports a task whose exception
    nobody retrieved only when the task is collected."""
    app = build_app(
        Config.from_dict(
            {
                "models": [mock_model("m", chunks=50, chunk_delay_ms=20)],
                "limits": {"rules": [{"per": "global", "concurrency": 1}]},
            }
        )
    )
    before = asyncio.all_tasks()
    for after_bodies in (0, 2, 0, 2):  # before the first byte, and mid-stream
        status, sent = await leave(app, after_bodies)
        assert status in (None, 200)  # never 429: each leaver gave the one slot back
        assert sent < 10  # it stopped streaming when the client left
    await await_until(lambda: asyncio.all_tasks() <= before, message="the requests' tasks to end")
    gc.collect()
    await asyncio.sleep(0)
    problems = [line for line in no_secrets_in_logs.lines if any(p in line for p in LOG_PROBLEMS[:2])]
    assert not problems, problems
