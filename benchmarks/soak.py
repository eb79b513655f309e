"""Soak: the full stack under mixed load for a while, sampling what must not grow.

    python -m benchmarks.soak --duration 600          # the 10-minute run
    python -m benchmarks.soak --duration 120 --json out.json

A real `asgi-llm serve` (auth with 20 tenant keys, rate limits far above the load, routing
over two fake upstreams) takes 70% streams and 30% plain requests from a bounded pool of
concurrent clients; 5% of requests meet a fault (upstream 500, a cut stream, or a client that
leaves mid-stream). Every 10 s it samples the server's RssAnon+VmSwap, open fds, and from
/admin/stats its asyncio tasks. Verdict: after warm-up, memory grows less than 1 MB per 10k
requests, and tasks and fds come back to their baseline once the load stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asgi_llm.auth.keys import hash_key  # noqa: E402
from tests.fakes.upstream import Behavior, FakeUpstream  # noqa: E402
from tests.harness import ProxyServer  # noqa: E402

TENANTS = 20
ADMIN_KEY = "sk-soak-admin-0000"


def key(tenant: int) -> str:
    return f"sk-soak-tenant-{tenant:04d}"


def config(upstreams: list[FakeUpstream]) -> dict[str, Any]:
    return {
        "models": [
            {
                "name": "soak",
                "deployments": [
                    {
                        "id": f"up{i}",
                        "provider": "openai-compatible",
                        "model": "soak",
                        "base_url": up.base_url,
                        "api_key": "sk-soak-upstream",
                        "cost": {"input_per_mtok": 1, "output_per_mtok": 2},
                    }
                    for i, up in enumerate(upstreams)
                ],
            }
        ],
        "routing": {"retries": 1, "cooldown": {"failures": 1000}},
        "auth": {
            "api_keys": [
                {"id": f"t{i}", "key_sha256": hash_key(key(i)), "roles": ["user"], "tenant": f"tenant-{i}"}
                for i in range(TENANTS)
            ]
            + [{"id": "admin", "key_sha256": hash_key(ADMIN_KEY), "roles": ["admin"]}],
            "roles": {
                "user": {"models": ["*"], "endpoints": ["*"]},
                "admin": {"models": ["*"], "endpoints": ["*"], "admin": True},
            },
        },
        "limits": {
            "storage": "memory://",
            "rules": [{"per": "key", "requests": "100000/minute", "tokens": "100000000/minute"}],
        },
    }


def process_sample(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = {line.split(":")[0]: line.split(":")[1].strip() for line in status.splitlines() if ":" in line}
    kib = lambda name: float(fields.get(name, "0 kB").split()[0])  # noqa: E731
    return {
        "rss_anon_mib": (kib("RssAnon") + kib("VmSwap")) / 1024,
        "fds": float(len(os.listdir(f"/proc/{pid}/fd"))),
    }


async def one_request(client: httpx2.AsyncClient, rng: random.Random, counts: dict[str, int]) -> None:
    tenant = rng.randrange(TENANTS)
    stream = rng.random() < 0.7
    leave_early = stream and rng.random() < 0.02
    body = {
        "model": "soak",
        "messages": [{"role": "user", "content": f"question {rng.randrange(10**6)}"}],
        "stream": stream,
    }
    headers = {"authorization": f"Bearer {key(tenant)}"}
    try:
        if stream:
            async with client.stream("POST", "/chat/completions", json=body, headers=headers) as response:
                async for _ in response.aiter_raw():
                    if leave_early:
                        break
                counts[f"{response.status_code}"] = counts.get(f"{response.status_code}", 0) + 1
        else:
            response = await client.post("/chat/completions", json=body, headers=headers)
            counts[f"{response.status_code}"] = counts.get(f"{response.status_code}", 0) + 1
    except httpx2.HTTPError as exc:
        counts[type(exc).__name__] = counts.get(type(exc).__name__, 0) + 1


async def run(
    duration: float, concurrency: int, sample_every: float, seed: int, idle_wait: float = 35.0
) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp, FakeUpstream("s0") as a, FakeUpstream("s1") as b:
        for up in (a, b):
            up.default = Behavior(chunks=12, chunk_delay_s=0.005)
        server = ProxyServer(
            config([a, b]), Path(tmp), extra_args=("--no-access-log", "--keep-alive-timeout", "5")
        )
        samples: list[dict[str, float]] = []
        counts: dict[str, int] = {}
        done = 0
        admin = {"authorization": f"Bearer {ADMIN_KEY}", "connection": "close"}
        started = time.monotonic()

        async def sample(phase: str) -> None:
            # A connection of its own, closed after: the sample leaves nothing behind.
            async with httpx2.AsyncClient(timeout=10) as probe:
                stats = (await probe.get(server.root_url + "/admin/stats", headers=admin)).json()
            samples.append(
                {
                    "t": round(time.monotonic() - started, 1),
                    "phase": phase,
                    "requests": done,
                    **process_sample(server.process.pid),
                    "tasks": stats["tasks"],
                    "task_kinds": stats.get("task_kinds"),
                }
            )

        try:
            await sample("baseline")
            deadline = time.monotonic() + duration
            async with httpx2.AsyncClient(
                base_url=server.base_url, timeout=30, limits=httpx2.Limits(max_connections=concurrency)
            ) as client:

                async def worker() -> None:
                    nonlocal done
                    while time.monotonic() < deadline:
                        for up in (a, b):  # 5% faults, spread over the kinds
                            roll = rng.random()
                            if roll < 0.02:
                                up.script(Behavior(status=500))
                            elif roll < 0.04:
                                up.script(Behavior(chunks=12, cut_after=4))
                        await one_request(client, rng, counts)
                        done += 1

                workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
                while time.monotonic() < deadline:
                    await asyncio.sleep(sample_every)
                    await sample("load")
                await asyncio.gather(*workers)
            # Load over, clients gone: wait out the keep-alives (server 5 s, upstream pool 30 s).
            await asyncio.sleep(idle_wait)
            await sample("idle")
        finally:
            server.stop()
    load = [s for s in samples if s["phase"] == "load"]
    warm = [s for s in load if s["requests"] >= min(5000, done // 4)] or load
    slope = 0.0
    if len(warm) >= 2 and warm[-1]["requests"] > warm[0]["requests"]:
        slope = (
            (warm[-1]["rss_anon_mib"] - warm[0]["rss_anon_mib"])
            / (warm[-1]["requests"] - warm[0]["requests"])
            * 10_000
        )
    baseline, idle = samples[0], samples[-1]
    return {
        "duration_s": duration,
        "requests": done,
        "outcomes": counts,
        "samples": samples,
        "rss_mib_per_10k_requests": round(slope, 3),
        "tasks_baseline": baseline["tasks"],
        "tasks_idle": idle["tasks"],
        "fds_baseline": baseline["fds"],
        "fds_idle": idle["fds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sample-every", type=float, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--idle-wait", type=float, default=35)
    parser.add_argument("--json")
    args = parser.parse_args()
    result = asyncio.run(run(args.duration, args.concurrency, args.sample_every, args.seed, args.idle_wait))
    for row in result["samples"]:
        print(row)
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
