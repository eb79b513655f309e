"""`/metrics` of a real 2-worker `asgi-llm serve`: every scrape, whichever worker answers it,
reports the totals of both (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import asyncio
import glob
import json
import os
from pathlib import Path

import httpx2
from prometheus_client.mmap_dict import MmapedDict

from tests.conftest import mock_model
from tests.harness import ProxyServer
from tests.metrics.conftest import chat, value
from tests.waiting import await_until

N = 40


def worker_pids(parent: int) -> list[int]:
    pids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.split("/")[2])
        if int(fields[1]) == parent and b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
            pids.append(pid)  # not multiprocessing's resource tracker
    return pids


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def requests_in(path: str) -> float:
    """asgi_llm_requests_total as one worker's own file holds it."""
    total = 0.0
    for key, val, _, _ in MmapedDict.read_all_values_from_file(path):
        if json.loads(key)[1] == "asgi_llm_requests_total":
            total += val
    return total


async def test_two_workers_report_the_totals_of_both(tmp_path):
    config = {"models": [mock_model("m1")], "metrics": {"prometheus": {"path": "/metrics"}}}
    with ProxyServer(config, tmp_path, workers=2) as server:
        # both workers up (ready = one answered)
        await await_until(lambda: server.workers_started() >= 2, timeout=20, interval=0.05)
        workers = worker_pids(server.process.pid)
        assert len(workers) == 2
        directory = environ_of(workers[0])["PROMETHEUS_MULTIPROC_DIR"]

        def per_worker() -> dict[int, float]:
            files = {pid: os.path.join(directory, f"counter_{pid}.db") for pid in workers}
            return {pid: requests_in(path) if os.path.exists(path) else 0.0 for pid, path in files.items()}

        async def one() -> int:
            async with httpx2.AsyncClient(timeout=10) as client:  # a connection of its own
                response = await client.post(server.base_url + "/chat/completions", json=chat())
                return response.status_code

        sent = 0

        async def both_served() -> bool:
            """N more requests; True once each worker has served some (the kernel hands new
            connections to either, not necessarily to both in one batch)."""
            nonlocal sent
            statuses = await asyncio.gather(*(one() for _ in range(N)))
            assert statuses == [200] * N
            sent += N
            return all(n > 0 for n in per_worker().values())

        await await_until(both_served, timeout=30, interval=0)
        # a worker counts a request once its response went out: the client may have it first
        await await_until(lambda: sum(per_worker().values()) == sent, message=f"{sent} requests counted")

        async with httpx2.AsyncClient(timeout=10) as client:
            totals = []

            async def twice_the_total() -> bool:
                # A fresh connection each time: the kernel hands scrapes to either worker.
                response = await client.get(server.root_url + "/metrics", headers={"connection": "close"})
                assert response.status_code == 200
                totals.append(value(response.text, "asgi_llm_requests_total", model="m1"))
                return totals[-2:] == [sent, sent]

            await await_until(twice_the_total, interval=0.05, message="two scrapes in a row with the total")
    assert not os.path.exists(directory)  # `serve` removes its directory at exit
