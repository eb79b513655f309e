"""The semantic tier measured as users meet it: through `asgi-llm serve`, over HTTP.

    python -m benchmarks.cache_semantic_http [--qqp-limit N] [--set threshold=0.9 ...]

One proxy (the default semantic settings unless `--set` says otherwise) in front of the
benchmark upstream (nginx, or its aiohttp stand-in). Each QQP pair gets its own context (a
system prompt naming the pair), so a pair can only meet itself: first every `a` is asked (a
miss, stored), then every `b` (hit or miss; `x-cache-ttl: 0` keeps `b` out of the index).

- default pass: `b` as a user sends it: precision and hit rate of the configuration itself,
  the hit latency (client side, p50/p99), and the stage that decided (`x-cache-stage`).
- sweep pass (`--sweep-from 0.85`): `b` again with `x-cache-threshold` at the bottom of the
  sweep; a context holds one question, so a hit at that threshold carries the pair's
  similarity (`x-cache-similarity`) and every higher threshold's table follows from it.
- near-misses (`NEAR_MISSES` of benchmarks.cache_semantic), each in its own context too: all
  must miss.

The QQP data is read in place (../shared/data, evaluation only) and never copied.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.cache_semantic import NEAR_MISSES, ROOT
from benchmarks.procs import ProcessGroup, free_port, wait_for_port
from benchmarks.upstream import MODEL, start_upstream

SWEEP = (0.85, 0.88, 0.9, 0.91, 0.92, 0.95)


def proxy_config(upstream_url: str, semantic: dict[str, Any]) -> dict[str, Any]:
    deployment = {
        "id": "bench",
        "provider": "openai-compatible",
        "model": MODEL,
        "base_url": f"{upstream_url}/v1",
        "api_key": "sk-bench",
    }
    return {
        "models": [{"name": MODEL, "deployments": [deployment]}],
        # Room for every `a` of the full set (20k) in the exact tier and the index.
        "cache": {
            "backend": "memory://",
            "max_entries": 100_000,
            "semantic": {"enabled": True, **semantic},
        },
    }


def body(context: str, text: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "system", "content": context}, {"role": "user", "content": text}],
    }


async def ask(
    session: aiohttp.ClientSession, url: str, context: str, text: str, headers: dict[str, str]
) -> dict[str, Any]:
    started = time.perf_counter()
    async with session.post(url, json=body(context, text), headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {(await response.text())[:200]}")
        got = response.headers
        return {
            "cache": got.get("x-cache"),
            "kind": got.get("x-cache-kind"),
            "stage": got.get("x-cache-stage"),
            "similarity": float(got["x-cache-similarity"]) if "x-cache-similarity" in got else None,
            "seconds": time.perf_counter() - started,
        }


async def run_all(
    url: str, jobs: list[tuple[str, str]], headers: dict[str, str], concurrency: int
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = [{} for _ in jobs]
    queue = list(enumerate(jobs))
    queue.reverse()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def worker() -> None:
            while queue:
                i, (context, text) = queue.pop()
                results[i] = await ask(session, url, context, text, headers)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def table(labels: list[int], sims: list[float | None], thresholds: tuple[float, ...]) -> list[dict[str, Any]]:
    positives = sum(labels)
    rows = []
    for threshold in thresholds:
        hits = [s is not None and s >= threshold for s in sims]
        tp = sum(h and y == 1 for h, y in zip(hits, labels, strict=True))
        fp = sum(h and y == 0 for h, y in zip(hits, labels, strict=True))
        rows.append(
            {
                "threshold": threshold,
                "precision": round(tp / max(1, tp + fp), 3),
                "hit_rate": round(tp / max(1, positives), 3),
                "false_hits": fp,
            }
        )
    return rows


def summary(labels: list[int], answers: list[dict[str, Any]]) -> dict[str, Any]:
    hits = [a["cache"] == "hit" for a in answers]
    tp = sum(h and y == 1 for h, y in zip(hits, labels, strict=True))
    fp = sum(h and y == 0 for h, y in zip(hits, labels, strict=True))
    stages: dict[str, int] = {}
    for a in answers:
        if a["stage"] is not None:
            stages[a["stage"]] = stages.get(a["stage"], 0) + 1
    return {
        "precision": round(tp / max(1, tp + fp), 3),
        "hit_rate": round(tp / max(1, sum(labels)), 3),
        "hits": tp + fp,
        "false_hits": fp,
        "hit_stages": stages,
        "hit_latency_ms": percentiles([a["seconds"] for a in answers if a["cache"] == "hit"]),
        "miss_latency_ms": percentiles([a["seconds"] for a in answers if a["cache"] != "hit"]),
    }


def percentiles(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {}
    ordered = sorted(seconds)
    return {
        "p50": round(statistics.median(ordered) * 1e3, 2),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3, 2),
    }


async def evaluate(url: str, rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    labels = [int(r["label"]) for r in rows]
    contexts = [f"Evaluation pair {i}." for i in range(len(rows))]
    quiet = {"x-cache-ttl": "0"}  # looked up, never stored
    started = time.perf_counter()
    await run_all(url, [(c, r["a"]) for c, r in zip(contexts, rows, strict=True)], {}, args.concurrency)
    report: dict[str, Any] = {"pairs": len(rows), "duplicates": sum(labels)}
    default = await run_all(
        url, [(c, r["b"]) for c, r in zip(contexts, rows, strict=True)], quiet, args.concurrency
    )
    report["default"] = summary(labels, default)
    if args.sweep_from:
        swept = await run_all(
            url,
            [(c, r["b"]) for c, r in zip(contexts, rows, strict=True)],
            {**quiet, "x-cache-threshold": str(args.sweep_from)},
            args.concurrency,
        )
        sims = [a["similarity"] if a["cache"] == "hit" else None for a in swept]
        report["sweep"] = table(labels, sims, tuple(t for t in SWEEP if t >= args.sweep_from))
    misses = [(f"Near-miss {i}.", stored, asked) for i, (_, stored, asked) in enumerate(NEAR_MISSES)]
    await run_all(url, [(c, stored) for c, stored, _ in misses], {}, 1)
    answers = await run_all(url, [(c, asked) for c, _, asked in misses], quiet, 1)
    report["near_misses"] = {
        "pairs": len(misses),
        "hits": sum(a["cache"] == "hit" for a in answers),
    }
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def setting(text: str) -> tuple[str, Any]:
    name, _, value = text.partition("=")
    return name, json.loads(value) if value[:1] in "0123456789.-[{tfn" else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--qqp-limit", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--sweep-from", type=float, default=0.85, help="0: no sweep pass")
    parser.add_argument(
        "--set", action="append", type=setting, default=[], help="a semantic setting: threshold=0.92"
    )
    args = parser.parse_args()
    with gzip.open(Path(args.data) / "qqp_dev.jsonl.gz", "rt") as handle:
        rows = [json.loads(line) for line in handle]
    rows = rows[: args.qqp_limit] if args.qqp_limit else rows
    semantic = dict(args.set)
    with tempfile.TemporaryDirectory() as tmp, ProcessGroup(Path(tmp)) as procs:
        workdir = Path(tmp)
        upstream = start_upstream(procs, workdir, None, sys.executable)
        config = workdir / "proxy.json"
        config.write_text(json.dumps(proxy_config(upstream.url, semantic)))
        port = free_port()
        argv = [sys.executable, "-m", "asgi_llm", "serve", "--config", str(config), "--port", str(port)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        proxy = procs.start("proxy", argv, cwd=ROOT, env=env)
        wait_for_port(proxy, port, timeout=120)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        report = asyncio.run(evaluate(url, rows, args))
    report["settings"] = semantic or "default"
    report["upstream"] = upstream.kind
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
