"""Fleet soak: three replicas on a real Redis Cluster, with a failover injected every interval.

    python -m benchmarks.fleet_soak                      # 10 minutes, a failover every 2
    python -m benchmarks.fleet_soak --duration 240 --failover-every 60 --json out.json

A local 3-primary / 3-replica cluster (tests/fleet/servers.py) and three `asgi-llm serve`
replicas with every shared state on it (tests/fleet/fleet.py: limits far above the load,
exact cache over a pool of 300 prompts, key store, shared cooldowns, reload channel). A bounded
pool of loopback clients spreads a steady rate (`--rate`) over the replicas. Every `--failover-every` seconds
the primary holding the limit keys fails over, alternately by kill (it comes back as a replica)
and by CLUSTER FAILOVER on its replica. Reported: req/s per 10 s, errors by kind, and each
replica's anonymous memory and open fds every 10 s (flat: the last sample against the first
after warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.soak import process_sample  # noqa: E402
from tests.fleet.fleet import REPLICAS, USER_KEYS, bearer, fleet_config, new_tag, start_fleet  # noqa: E402
from tests.fleet.servers import RedisClusterSet  # noqa: E402

SAMPLE_S = 10.0
PROMPTS = 300


def soak_config(url: str, tag: str) -> dict[str, Any]:
    config = fleet_config(url, tag, limit=1_000_000)
    config["limits"]["budgets"] = []
    return config


def inject(cluster: RedisClusterSet, tag: str, n: int) -> dict[str, Any]:
    """One failover of the primary holding `{tag}`: a kill (odd n) or CLUSTER FAILOVER."""
    started = time.monotonic()
    key = "{" + tag + "}"
    primary = cluster.primary_of(key)
    if n % 2:
        cluster.kill(primary)
        deadline = time.monotonic() + 30
        while cluster.primary_of(key) == primary and time.monotonic() < deadline:
            time.sleep(0.1)
        promoted = time.monotonic() - started
        cluster.restart(primary)
        cluster.wait_recovered()
        kind = "kill"
    else:
        cluster.failover(key)
        promoted = time.monotonic() - started
        kind = "cluster-failover"
    return {"kind": kind, "promoted_after_s": round(promoted, 2)}


async def run(duration: float, failover_every: float, concurrency: int, rate: float) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="fleet-soak-"))
    (root / "cluster").mkdir()
    cluster = RedisClusterSet(root / "cluster")
    tag = new_tag()
    results: dict[str, Any] = {"duration_s": duration, "failover_every_s": failover_every, "target_rps": rate}
    try:
        with ExitStack() as stack:
            servers = start_fleet(stack, soak_config(cluster.url, tag), root)
            pids = [server.process.pid for server in servers]
            errors: Counter[str] = Counter()
            done: list[float] = []
            samples: list[dict[str, Any]] = []
            failovers: list[dict[str, Any]] = []
            begin = time.monotonic()
            headers = bearer(USER_KEYS["team-a"])

            async def worker(n: int, client: httpx2.AsyncClient) -> None:
                rng = random.Random(n)
                i = n
                interval = concurrency / rate  # this worker's share of the steady rate
                while time.monotonic() - begin < duration:
                    next_at = time.monotonic() + interval
                    body = {
                        "model": "mock-1",
                        "messages": [{"role": "user", "content": f"q{rng.randrange(PROMPTS)}"}],
                    }
                    try:
                        response = await client.post(
                            servers[i % REPLICAS].base_url + "/chat/completions", json=body, headers=headers
                        )
                        if response.status_code != 200:
                            errors[f"{response.status_code} {response.json()['error'].get('code')}"] += 1
                    except httpx2.HTTPError as exc:
                        errors[type(exc).__name__] += 1
                    done.append(time.monotonic() - begin)
                    i += 1
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))

            async def sampler() -> None:
                while time.monotonic() - begin < duration:
                    await asyncio.sleep(SAMPLE_S)
                    at = time.monotonic() - begin
                    recent = sum(1 for t in done if t > at - SAMPLE_S)
                    samples.append(
                        {
                            "t": round(at),
                            "rps": round(recent / SAMPLE_S, 1),
                            "replicas": [process_sample(pid) for pid in pids],
                        }
                    )

            async def failover() -> None:
                n = 0
                while time.monotonic() - begin + failover_every < duration + 1:
                    await asyncio.sleep(failover_every - (time.monotonic() - begin) % failover_every)
                    n += 1
                    event = await asyncio.to_thread(inject, cluster, tag, n)
                    event["at_s"] = round(time.monotonic() - begin, 1)
                    failovers.append(event)

            limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            async with httpx2.AsyncClient(timeout=30, limits=limits) as client:
                tasks = [asyncio.create_task(worker(n, client)) for n in range(concurrency)]
                helpers = [asyncio.create_task(sampler()), asyncio.create_task(failover())]
                await asyncio.gather(*tasks)
                for helper in helpers:
                    helper.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
            results.update(
                requests=len(done),
                rps=round(len(done) / duration, 1),
                errors=dict(errors),
                failovers=failovers,
                samples=samples,
                flat=flatness(samples),
            )
    finally:
        cluster.stop()
    return results


def flatness(samples: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Per replica: memory and fds at the first sample after warm-up (the second) and at the end."""
    if len(samples) < 3:
        return []
    first, last = samples[1]["replicas"], samples[-1]["replicas"]
    return [
        {
            "rss_anon_mib_start": round(a["rss_anon_mib"], 1),
            "rss_anon_mib_end": round(b["rss_anon_mib"], 1),
            "rss_anon_mib_max": round(max(s["replicas"][i]["rss_anon_mib"] for s in samples[1:]), 1),
            "fds_start": a["fds"],
            "fds_end": b["fds"],
            "fds_max": max(s["replicas"][i]["fds"] for s in samples[1:]),
        }
        for i, (a, b) in enumerate(zip(first, last, strict=True))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    parser.add_argument("--failover-every", type=float, default=120.0, help="seconds between failovers")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent loopback clients")
    parser.add_argument("--rate", type=float, default=100.0, help="target requests per second (steady)")
    parser.add_argument("--json", type=Path, help="write the full results here")
    args = parser.parse_args()
    results = asyncio.run(run(args.duration, args.failover_every, args.concurrency, args.rate))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    summary = {k: v for k, v in results.items() if k != "samples"}
    summary["rps_per_10s"] = [s["rps"] for s in results["samples"]]
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
