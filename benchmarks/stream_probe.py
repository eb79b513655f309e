"""Time to first byte and per-chunk cost of a streamed answer, one request at a time.

wrk reports whole-response latency only. This probe sends sequential streaming requests on
one keep-alive connection (http.client, so every target pays the same client cost) and takes
two times per request: the first body byte, and the end of the body. Against the upstream
called directly, the proxy's added TTFB is the difference of the first, and its work per
SSE chunk is (added total - added TTFB) / chunks.
"""

from __future__ import annotations

import http.client
import statistics
import time
from dataclasses import dataclass


@dataclass
class StreamTimes:
    ttfb_p50_ms: float
    ttfb_p99_ms: float
    total_p50_ms: float
    total_p99_ms: float
    requests: int


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def probe(
    port: int,
    path: str,
    body: str,
    headers: dict[str, str],
    *,
    requests: int = 300,
    warmup: int = 30,
    vary: str | None = None,
) -> StreamTimes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    ttfb: list[float] = []
    total: list[float] = []
    try:
        for i in range(warmup + requests):
            # Each request differs (`vary` in the body), so a response cache always misses.
            text = body.replace(vary, f"{vary} probe-{time.monotonic_ns()}-{i}", 1) if vary else body
            payload = text.encode()
            started = time.perf_counter()
            connection.request("POST", path, body=payload, headers=headers)
            response = connection.getresponse()
            first = response.read1(65536)  # returns as soon as some body bytes arrived
            first_at = time.perf_counter()
            rest = response.read()
            ended = time.perf_counter()
            if response.status != 200 or b"[DONE]" not in first + rest:
                raise RuntimeError(f"stream probe: status {response.status}, body {(first + rest)[:200]!r}")
            if i >= warmup:
                ttfb.append((first_at - started) * 1e3)
                total.append((ended - started) * 1e3)
    finally:
        connection.close()
    return StreamTimes(statistics.median(ttfb), _p99(ttfb), statistics.median(total), _p99(total), requests)
