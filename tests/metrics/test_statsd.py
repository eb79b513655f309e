"""StatsD/DogStatsD over real UDP: a listener socket in the test receives the lines."""

from __future__ import annotations

import asyncio
import re
import socket
import time

import pytest

from asgi_llm import Config
from asgi_llm.metrics.statsd import StatsDExporter, UDPSender, tag_value
from tests.conftest import mock_model
from tests.metrics.conftest import call, chat
from tests.waiting import wait_until

# name:value|type|#tag:value,... : nothing else may ever reach the agent (THREATS H13).
LINE = re.compile(
    r"[A-Za-z_][A-Za-z0-9_.]*:-?[0-9.]+\|(c|g|ms)(\|#[^|#\n]+:[^|#\n,:]+"
    r"(,[^|#\n,:]+:[^|#\n,:]+)*)?"
)


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


async def receive_lines(sock: socket.socket, *, until: str, timeout: float = 3.0) -> list[str]:
    """Lines received until one starts with `until` (then what is already queued, too)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65535)
        except BlockingIOError:
            if any(line.startswith(until) for line in lines):
                return lines
            await asyncio.sleep(0.01)
            continue
        lines.extend(data.decode().split("\n"))
    raise AssertionError(f"no {until!r} line within {timeout} s; got {lines}")


def statsd_config(port: int, **statsd) -> Config:
    return Config.from_dict(
        {"models": [mock_model("m1")], "metrics": {"statsd": {"host": "127.0.0.1", "port": port, **statsd}}}
    )


async def test_a_request_sends_dogstatsd_lines(listener, make_app):
    port = listener.getsockname()[1]
    app = make_app(statsd_config(port, tags={"env": "test"}))
    assert (await call(app, "/v1/chat/completions", chat()))[0] == 200
    lines = await receive_lines(listener, until="asgi_llm.requests:")
    assert (
        "asgi_llm.requests:1|c|#endpoint:chat,model:m1,deployment:m1-d,status:2xx,cache:none,env:test"
    ) in lines
    names = {line.split(":", 1)[0] for line in lines}
    assert {
        "asgi_llm.request.duration",
        "asgi_llm.upstream.duration",
        "asgi_llm.proxy.overhead",
        "asgi_llm.tokens.prompt",
        "asgi_llm.tokens.completion",
    } <= names
    tokens = [line for line in lines if line.startswith("asgi_llm.tokens:")]
    assert {line.rsplit("kind:", 1)[1].split(",")[0] for line in tokens} == {"input", "output"}
    assert all("|c|#model:m1,deployment:m1-d,kind:" in line for line in tokens)
    duration = next(line for line in lines if line.startswith("asgi_llm.request.duration:"))
    assert duration.endswith("|ms|#model:m1,deployment:m1-d,env:test")
    assert all(LINE.fullmatch(line) for line in lines), lines


async def test_errors_and_prefix(listener, make_app):
    port = listener.getsockname()[1]
    app = make_app(statsd_config(port, prefix="llm.proxy"))
    assert (await call(app, "/v1/chat/completions", chat("nope")))[0] == 404
    lines = await receive_lines(listener, until="llm.proxy.errors:")
    assert (
        "llm.proxy.errors:1|c|#endpoint:chat,model:other,type:invalid_request_error,code:model_not_found"
    ) in lines


async def test_values_cannot_inject_lines_or_tags(listener, make_app):
    evil = "m|c\nasgi_llm.pwned:1|c|#a:b,x#y:z"
    port = listener.getsockname()[1]
    model = {"name": evil, "deployments": [{"id": "d:1", "provider": "mock", "model": "m"}]}
    cfg = Config.from_dict(
        {"models": [model], "metrics": {"statsd": {"port": port, "tags": {"service": "a|b:c#d,e\nf"}}}}
    )
    app = make_app(cfg)
    assert (await call(app, "/v1/chat/completions", chat(evil)))[0] == 200
    lines = await receive_lines(listener, until="asgi_llm.requests:")
    assert all(LINE.fullmatch(line) for line in lines), lines
    assert not any(line.startswith("asgi_llm.pwned") for line in lines)
    assert any("model:m_c_asgi_llm.pwned_1_c__a_b_x_y_z" in line for line in lines)
    assert any("service:a_b_c_d_e_f" in line for line in lines)
    assert any("deployment:d_1" in line for line in lines)


def test_tag_values_are_sanitized():
    assert tag_value("a|b:c#d,e\nf\r g@h\x00") == "a_b_c_d_e_f__g_h_"
    assert tag_value("") == "_"
    assert len(tag_value("x" * 1000)) == 200


def test_packets_stay_under_the_size_limit(listener):
    port = listener.getsockname()[1]
    exporter = StatsDExporter("127.0.0.1", port, max_packet_bytes=512)
    exporter._send([f"asgi_llm.x{i}:1|c|#model:{'m' * 40}" for i in range(40)] + ["y" * 600])
    packets: list[bytes] = []

    def forty_lines() -> bool:
        while True:
            try:
                packets.append(listener.recv(65535))
            except BlockingIOError:
                return sum(len(p.split(b"\n")) for p in packets) >= 40

    wait_until(forty_lines, timeout=2, message="40 statsd lines")
    assert len(packets) > 1 and all(len(p) <= 512 for p in packets)
    assert sum(len(p.split(b"\n")) for p in packets) == 40
    assert exporter.dropped == 1  # the one line too long for any packet
    exporter.sender.close()


def test_sending_never_blocks_and_drops_are_counted():
    sender = UDPSender("127.0.0.1", 9)  # nothing listens: sendto still returns at once
    start = time.perf_counter()
    for _ in range(2000):
        sender.send(b"asgi_llm.requests:1|c")
    assert time.perf_counter() - start < 1.0
    assert sender.sent + sender.dropped == 2000
    sender.close()
    sender.send(b"x:1|c")  # closed: dropped, not raised
    assert sender.dropped >= 1


async def test_a_host_name_is_resolved_off_the_loop(listener):
    port = listener.getsockname()[1]
    exporter = StatsDExporter("localhost", port)
    await exporter.start()
    exporter._send(["asgi_llm.hello:1|c"])
    lines = await receive_lines(listener, until="asgi_llm.hello:")
    assert "asgi_llm.hello:1|c" in lines
    await exporter.aclose()


async def test_an_unresolvable_host_drops_without_failing_requests(make_app):
    cfg = Config.from_dict(
        {"models": [mock_model("m1")], "metrics": {"statsd": {"host": "no-such-host.invalid", "port": 8125}}}
    )
    app = make_app(cfg)
    for _ in range(3):
        assert (await call(app, "/v1/chat/completions", chat()))[0] == 200
