"""Turning wrk results into the report: medians per cell, ratios, Markdown, machine facts."""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from benchmarks import load
from benchmarks.upstream import SSE_CHUNKS, Upstream

PACKAGES = (
    "uvicorn",
    "httptools",
    "granian",
    "hypercorn",
    "starlette",
    "httpx2",
    "aiohttp",
    "httpx-aiohttp",
    "uvloop",
    "h11",
    "asgi-llm",
)


@dataclass
class Cell:
    target: str
    connections: int
    runs: list[load.WrkResult] = field(default_factory=list)
    error: str | None = None

    def median(self, attr: str) -> float | None:
        values = [getattr(r, attr) for r in self.runs if getattr(r, attr) is not None]
        return statistics.median(values) if values else None

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine_facts(upstream: Upstream) -> dict[str, str]:
    return {
        "nproc": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **{name: _version(name) for name in PACKAGES},
        "upstream": upstream.kind,
        "wrk": load.wrk_version(),
    }


def summarize(cells: dict[int, dict[str, Cell]]) -> dict[int, list[dict]]:
    """Per connection count: one row per target with medians, ratio and added latency."""
    table: dict[int, list[dict]] = {}
    for conns, by_target in cells.items():
        floors = [c.median("rps") for c in by_target.values() if c.target.startswith("floor-") and c.runs]
        best_floor = max((f for f in floors if f), default=None)
        direct = by_target.get("direct")
        direct_p50 = direct.median("p50_ms") if direct and direct.runs else None
        direct_p99 = direct.median("p99_ms") if direct and direct.runs else None
        rows = []
        for cell in by_target.values():
            rps, p50, p99 = cell.median("rps"), cell.median("p50_ms"), cell.median("p99_ms")
            rows.append(
                {
                    "target": cell.target,
                    "rps": rps,
                    "p50_ms": p50,
                    "p90_ms": cell.median("p90_ms"),
                    "p99_ms": p99,
                    "rps_vs_best_floor": rps / best_floor if rps and best_floor else None,
                    "added_p50_ms": p50 - direct_p50 if p50 is not None and direct_p50 is not None else None,
                    "added_p99_ms": p99 - direct_p99 if p99 is not None and direct_p99 is not None else None,
                    "rps_runs": [round(r.rps, 1) for r in cell.runs],
                    "other_cpu_pct": cell.median("other_cpu_pct"),
                    "cpu_us_per_request": cell.median("cpu_us_per_request"),
                    "errors": cell.errors,
                    "error": cell.error,
                    "runs": [r.to_dict() for r in cell.runs],
                }
            )
        table[conns] = rows
    return table


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown(table: dict[int, list[dict]], meta: dict) -> str:
    facts = meta["machine"]
    lines = [
        f"# asgi-llm benchmark, {meta['started_utc']}",
        "",
        f"- Command: `{meta['command']}`",
        f"- Machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['os']}, Python {facts['python']}",
        "- Versions: " + ", ".join(f"{name} {facts[name]}" for name in PACKAGES),
        f"- Upstream: {facts['upstream']}",
        f"- Workload: {meta['workload']}",
        (
            f"- Load: {facts['wrk']}, `-t1 --latency`, {meta['duration_s']} s per cell after a "
            f"{meta['warmup_s']} s warm-up, {meta['rounds']} interleaved round(s), median shown; "
            f"{meta['pinning']}"
        ),
        (
            "- Floors: Starlette on hypercorn (in-process `hypercorn.asyncio.serve`, keep_alive_max_requests "
            "1e6) or on uvicorn+httptools (`-uvicorn`), 1 worker, uvloop unless the name says asyncio, no "
            "access log. Proxies: `asgi-llm serve` on its default server (uvicorn) unless the name "
            "says another; `proxy-hit` sends the same body every time (cache hits)"
        ),
        (
            "- `vs best floor`: req/s ÷ the fastest floor's req/s at that connection count; "
            "`+p50`: p50 minus the direct (upstream) p50; `others' CPU %`: CPU (% of one core, "
            "median) that processes outside the benchmark used during the measured runs: "
            "above ~5 % the cell is disturbed; `CPU µs/req`: the target's own CPU time (all its "
            "processes, user + system) over the measured run ÷ its requests, the steadier figure "
            "on a busy machine."
        ),
        "",
    ]
    for conns, rows in table.items():
        lines += [
            f"## {conns} connection{'s' if conns != 1 else ''}",
            "",
            "| target | req/s | p50 ms | p99 ms | vs best floor | +p50 vs direct (ms) "
            "| +p99 vs direct (ms) | CPU µs/req | errors | req/s per round | others' CPU % |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
        ]
        for row in rows:
            errors = str(row["errors"]) if row["error"] is None else f"{row['errors']} + failed run"
            per_round = ", ".join(f"{v:,.0f}" for v in row["rps_runs"])
            lines.append(
                f"| {row['target']} | {_fmt(row['rps'], ',.0f')} | {_fmt(row['p50_ms'], '.2f')} "
                f"| {_fmt(row['p99_ms'], '.2f')} | {_fmt(row['rps_vs_best_floor'], '.2f')}× "
                f"| {_fmt(row['added_p50_ms'], '+.2f')} | {_fmt(row.get('added_p99_ms'), '+.2f')} "
                f"| {_fmt(row.get('cpu_us_per_request'), '.0f')} | {errors} | {per_round} "
                f"| {_fmt(row['other_cpu_pct'], '.0f')} |"
            )
        lines.append("")
    lines += _memory_lines(meta.get("memory_mib") or {}) + _stream_lines(meta.get("stream") or {})
    disturbed = [
        (f"{row['target']} at c={conns}", row["other_cpu_pct"])
        for conns, rows in table.items()
        for row in rows
        if row["other_cpu_pct"] is not None and row["other_cpu_pct"] >= 10
    ]
    if disturbed:
        n_cells = sum(len(rows) for rows in table.values())
        pcts = [pct for _, pct in disturbed]
        where = "every cell" if len(disturbed) == n_cells else ", ".join(name for name, _ in disturbed)
        meta["notes"].append(
            f"other processes used {min(pcts):.0f}-{max(pcts):.0f} % of a core during "
            f"{where}: rerun on a quiet machine (`--wait-quiet 600`) before trusting it."
        )
    if meta["notes"]:
        lines += ["## Notes", "", *(f"- {n}" for n in meta["notes"]), ""]
    return "\n".join(lines)


def _memory_lines(memory: dict[str, dict]) -> list[str]:
    if not memory:
        return []
    lines = [
        "## Resident memory",
        "",
        "RssAnon + VmSwap of each server process (and its children), MiB: after start-up and "
        "one request, and after the whole run.",
        "",
        "| target | idle | after load |",
        "|---|---:|---:|",
    ]
    for name, row in memory.items():
        lines.append(f"| {name} | {_fmt(row.get('idle'), '.1f')} | {_fmt(row.get('after_load'), '.1f')} |")
    return [*lines, ""]


def _stream_lines(stream: dict[str, dict]) -> list[str]:
    if not stream:
        return []
    direct = stream.get("direct")
    chunks = SSE_CHUNKS
    lines = [
        "## Streaming, one request at a time",
        "",
        f"Sequential streamed requests on one keep-alive connection (benchmarks/stream_probe.py); "
        f"{chunks} content chunks per answer. `per chunk` = (added total - added TTFB) / {chunks}.",
        "",
        "| target | TTFB p50 ms | TTFB p99 ms | total p50 ms | +TTFB p50 vs direct | per chunk ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in stream.items():
        added_ttfb = row["ttfb_p50_ms"] - direct["ttfb_p50_ms"] if direct else None
        added_total = row["total_p50_ms"] - direct["total_p50_ms"] if direct else None
        per_chunk = None
        if added_ttfb is not None and added_total is not None:
            per_chunk = (added_total - added_ttfb) / chunks
        lines.append(
            f"| {name} | {row['ttfb_p50_ms']:.2f} | {row['ttfb_p99_ms']:.2f} "
            f"| {row['total_p50_ms']:.2f} | {_fmt(added_ttfb, '+.2f')} | {_fmt(per_chunk, '.3f')} |"
        )
    return [*lines, ""]
