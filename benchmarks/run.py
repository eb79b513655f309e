"""Run the benchmark: the proxy's own cost against the same upstream called directly.

    python -m benchmarks.run            # default: c=1,16,64 x 2 rounds x 5 s (~3-4 min)
    python -m benchmarks.run --quick    # 1 round x 2 s (< 1 min)

One nginx upstream, the floors (benchmarks.floors) and the proxy (``asgi-llm serve``,
when the console script exists) are all started first and stay up for the whole run.
For each connection count, each round runs every target in turn (a warm-up, then the
measured wrk run), the order rotating by one target each round; each cell reports the
median over the rounds. Results go to stdout, ``benchmarks/results/<UTC stamp>.md`` and
a JSON file for plotting. Every process started here is stopped on exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx2

from asgi_llm.auth import hash_key
from benchmarks import load
from benchmarks.procs import (
    CpuMeter,
    ProcessGroup,
    free_port,
    group_cpu_seconds,
    install_signal_handlers,
    private_memory_mib,
    tail,
    wait_for_port,
    wait_until_quiet,
)
from benchmarks.report import Cell, machine_facts, markdown, summarize
from benchmarks.stream_probe import probe
from benchmarks.upstream import (
    CHAT_COMPLETION,
    CHAT_PATH,
    MODEL,
    REQUEST_BODY,
    REQUEST_HEADERS,
    SSE_BODY,
    SSE_PATH,
    STREAM_REQUEST_BODY,
    Upstream,
    start_upstream,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
FLOOR_KINDS = ("httpx2", "aiohttp", "httpx2-aiohttp")
SERVERS = ("uvicorn", "hypercorn", "granian")  # asgi-llm serve --server; uvicorn is the default
# The proxies: `proxy` and `proxy-full` on the default server, `-<server>` on another one;
# `proxy-hit` is the full stack answering every request from its cache. The floors on
# hypercorn (`floor-<kind>`) and on uvicorn+httptools (`floor-<kind>-uvicorn`).
DEFAULT_TARGETS = (
    "direct",
    "floor-aiohttp",
    "floor-aiohttp-uvicorn",
    "proxy",
    "proxy-full",
    "proxy-full-hypercorn",
    "proxy-full-granian",
    "proxy-hit",
)
# Not run by default: the other HTTP clients' floors (issue 2), the floors on the standard
# asyncio loop (uvloop comparison), the idle stack on the other servers. Also the peers users
# compare to: LiteLLM's proxy from its own venv (BENCH_LITELLM names its `litellm` script;
# `python -m venv v && v/bin/pip install 'litellm[proxy]'`), no database; Portkey's open
# source gateway (BENCH_PORTKEY names its build/start-server.js; `npm install
# @portkey-ai/gateway`), on node, routed to the upstream by its x-portkey-* headers.
EXTRA_TARGETS = (
    *(f"floor-{k}" for k in FLOOR_KINDS if k != "aiohttp"),
    *(f"floor-{k}-uvicorn" for k in FLOOR_KINDS if k != "aiohttp"),
    *(f"floor-{k}-asyncio" for k in FLOOR_KINDS),
    "proxy-hypercorn",
    "proxy-granian",
    "proxy-full-uvicorn",
    "proxy-hit-hypercorn",
    "litellm",
    "portkey",
    # The full stack with the usage ledger (docs/ledger.md) on SQLite, and on PostgreSQL
    # (BENCH_LEDGER_PG: a server URL whose `postgres` database may create another; default
    # the local one): compare with proxy-full in the same run.
    "proxy-ledger-sqlite",
    "proxy-ledger-postgres",
)
SSE_MODEL = f"{MODEL}-sse"
VARY = "Say hello"  # every request's body differs here: the full stack's cache always misses
# The full default stack of issue 10: API-key auth, limits in memory far above the load,
# Prometheus metrics, the router, the exact cache on and missing.
FULL_STACK = f"""\
auth:
  api_keys:
    - {{id: bench, key_sha256: "{hash_key(REQUEST_HEADERS["Authorization"].removeprefix("Bearer "))}",
       roles: [user]}}
  roles:
    user: {{models: ["*"], endpoints: [chat, completions, embeddings, models]}}
limits:
  storage: memory://
  rules:
    - {{per: key, requests: 100000000/minute, tokens: 100000000000/minute}}
metrics:
  prometheus: {{}}
cache:
  backend: memory://
"""


@dataclass
class Target:
    name: str
    port: int
    path: str  # request path wrk POSTs to
    body: str
    argv: list[str] | None = None  # None: the upstream itself, nothing to start
    expect_exact: str | None = None  # smoke check: the body must be exactly this
    script: Path | None = None
    env: dict[str, str] | None = None  # added to the environment of the started server
    headers: dict[str, str] | None = None  # sent besides REQUEST_HEADERS
    vary: bool = True  # every body differs (a cache misses); False: the same body (it hits)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"


# --- targets ---------------------------------------------------------------------------


def find_proxy_script() -> Path | None:
    for candidate in (
        Path(sys.executable).parent / "asgi-llm",
        ROOT / ".venv/bin/asgi-llm",
    ):
        if candidate.exists():
            return candidate
    return None


def proxy_config(upstream: Upstream, sse: bool, full: bool) -> str:
    """The proxy's config: one model on the nginx upstream (plus a streaming one for --sse),
    and for the full stack the sections every layer acts on."""

    def model(name: str, deployment_id: str, prefix: str) -> str:
        return f"""\
  - name: {name}
    deployments:
      - id: {deployment_id}
        provider: openai-compatible
        model: {MODEL}
        base_url: {upstream.url}{prefix}/v1
        api_key: sk-bench
"""

    sse_model = model(SSE_MODEL, "nginx-sse", "/sse") if sse else ""
    return "models:\n" + model(MODEL, "nginx", "") + sse_model + (FULL_STACK if full else "")


def build_targets(
    names: list[str], upstream: Upstream, workdir: Path, sse: bool, notes: list[str]
) -> list[Target]:
    python = sys.executable
    floor_path, floor_body = (SSE_PATH, STREAM_REQUEST_BODY) if sse else (CHAT_PATH, REQUEST_BODY)
    expected = SSE_BODY if sse else CHAT_COMPLETION
    targets = []
    for name in names:
        if name == "direct":
            targets.append(Target(name, upstream.port, floor_path, floor_body, None, expected))
        elif name.startswith("floor-"):
            loop_name = "asyncio" if name.endswith("-asyncio") else "uvloop"
            kind = name.removeprefix("floor-").removesuffix("-asyncio")
            server = "uvicorn" if kind.endswith("-uvicorn") else "hypercorn"
            kind = kind.removesuffix("-uvicorn")
            port = free_port()
            argv = [python, "-m", "benchmarks.floors", kind, "--port", str(port)]
            argv += ["--upstream", upstream.url, "--loop", loop_name, "--server", server]
            targets.append(Target(name, port, floor_path, floor_body, argv, expected))
        elif name == "portkey":
            script = os.environ.get("BENCH_PORTKEY")
            if not script or not Path(script).exists():
                notes.append("portkey: skipped, set BENCH_PORTKEY to its build/start-server.js.")
                continue
            port = free_port()
            argv = ["node", script, f"--port={port}", "--headless"]
            body = STREAM_REQUEST_BODY if sse else REQUEST_BODY
            prefix = "/sse" if sse else ""
            route = {"x-portkey-provider": "openai", "x-portkey-custom-host": f"{upstream.url}{prefix}/v1"}
            targets.append(Target(name, port, CHAT_PATH, body, argv, None, headers=route))
        elif name == "litellm":
            binary = os.environ.get("BENCH_LITELLM")
            if not binary or not Path(binary).exists():
                notes.append("litellm: skipped, set BENCH_LITELLM to the `litellm` script of its venv.")
                continue
            config = workdir / "litellm.yaml"
            model = SSE_MODEL if sse else MODEL
            # Its master key is the key wrk sends: auth on, like the full stack's API key.
            config.write_text(
                json.dumps(
                    {
                        "model_list": [
                            {
                                "model_name": model,
                                "litellm_params": {
                                    "model": f"openai/{MODEL}",
                                    "api_key": "sk-bench",
                                    "api_base": f"{upstream.url}{'/sse' if sse else ''}/v1",
                                },
                            }
                        ],
                        "general_settings": {
                            "master_key": REQUEST_HEADERS["Authorization"].removeprefix("Bearer ")
                        },
                    }
                )
            )
            port = free_port()
            argv = [
                binary,
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--num_workers",
                "1",
            ]
            body = STREAM_REQUEST_BODY.replace(f'"{MODEL}"', f'"{SSE_MODEL}"') if sse else REQUEST_BODY
            targets.append(
                Target(
                    name,
                    port,
                    CHAT_PATH,
                    body,
                    argv,
                    None,
                    env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"},
                )
            )
        elif name.startswith("proxy"):
            script = find_proxy_script()
            if script is None:
                notes.append("proxy: skipped, `.venv/bin/asgi-llm` does not exist (not installed yet).")
                continue
            stack, _, server = _proxy_parts(name)
            config = workdir / f"{name}.yaml"
            config.write_text(
                proxy_config(upstream, sse, full=stack != "proxy") + ledger_section(stack, workdir)
            )
            port = free_port()
            argv = [str(script), "serve", "--config", str(config)]
            argv += ["--host", "127.0.0.1", "--port", str(port)]
            if server:
                argv += ["--server", server]
            body = STREAM_REQUEST_BODY.replace(f'"{MODEL}"', f'"{SSE_MODEL}"') if sse else REQUEST_BODY
            targets.append(Target(name, port, CHAT_PATH, body, argv, None, vary=stack != "proxy-hit"))
    return targets


def ledger_section(stack: str, workdir: Path) -> str:
    """The `ledger:` section of a proxy-ledger-* target: a fresh SQLite file, or a fresh
    PostgreSQL database (dropped and made again for each run)."""
    if stack == "proxy-ledger-sqlite":
        return f"ledger: {{url: 'sqlite:///{workdir}/ledger.db'}}\n"
    if stack == "proxy-ledger-postgres":
        from benchmarks.ledger_cost import fresh_pg_database

        return f"ledger: {{url: '{fresh_pg_database('asgi_llm_bench_ledger')}'}}\n"
    return ""


def _proxy_parts(name: str) -> tuple[str, str, str]:
    """`proxy-full-granian` -> ("proxy-full", "-", "granian"); no server: the default."""
    for server in SERVERS:
        if name.endswith(f"-{server}"):
            return name.removesuffix(f"-{server}"), "-", server
    return name, "", ""


def smoke_check(target: Target) -> str | None:
    """One real request; returns why the target is unusable, or None when it is fine."""
    try:
        headers = {**REQUEST_HEADERS, **(target.headers or {})}
        resp = httpx2.post(target.url, content=target.body, headers=headers, timeout=10)
    except httpx2.HTTPError as exc:
        return f"request failed: {exc!r}"
    if resp.status_code != 200:
        return f"answered {resp.status_code}: {resp.text[:300]}"
    if target.expect_exact is not None and resp.text != target.expect_exact:
        return f"body differs from the upstream's: {resp.text[:300]}"
    if target.expect_exact is None and "chat.completion" not in resp.text:
        return f"not a chat completion: {resp.text[:300]}"
    return None


def start_targets(
    procs: ProcessGroup, targets: list[Target], cpus: str | None, notes: list[str]
) -> list[Target]:
    """Start every target's server, wait for it and check one request; drop the proxy if
    it fails (it is work in progress), fail the run for anything else."""
    started = [
        (
            t,
            procs.start(t.name, t.argv, cpus=cpus, cwd=ROOT, env={**os.environ, **t.env} if t.env else None)
            if t.argv
            else None,
        )
        for t in targets
    ]
    usable = []
    for target, child in started:
        try:
            if child is not None:
                wait_for_port(
                    child, target.port, timeout=120 if target.name in ("litellm", "portkey") else 30
                )
            problem = smoke_check(target)
            if problem and child is not None and child.alive() and problem.startswith("answered"):
                problem += f"\n{tail(child.log, 5)}"
        except RuntimeError as exc:
            problem = str(exc)
        if problem is None:
            usable.append(target)
        elif target.name.startswith(("proxy", "litellm", "portkey")):
            notes.append(f"{target.name}: skipped, it did not come up: {problem}")
            if child is not None:
                procs.stop(child)
        else:
            raise RuntimeError(f"{target.name}: {problem}")
    return usable


# --- measuring -------------------------------------------------------------------------


def measure(
    targets: list[Target],
    args: argparse.Namespace,
    wrk_cpus: str | None,
    meter: CpuMeter,
) -> dict[int, dict[str, Cell]]:
    cells = {c: {t.name: Cell(t.name, c) for t in targets} for c in args.connections}
    total = len(args.connections) * args.rounds * len(targets)
    done = 0
    for conns in args.connections:
        for rnd in range(args.rounds):
            shift = rnd % len(targets)
            for target in targets[shift:] + targets[:shift]:
                done += 1
                cell = cells[conns][target.name]
                assert target.script is not None
                try:
                    nonce = f"{target.name}-{conns}-{rnd}"
                    if args.warmup > 0:
                        load.run_wrk(
                            target.url, target.script, conns, args.warmup, cpus=wrk_cpus, nonce=nonce + "w"
                        )
                    started = meter.start()
                    pgid = next((c.pid for c in meter.procs.children if c.name == target.name), None)
                    cpu_before = group_cpu_seconds(pgid) if pgid is not None else None
                    result = load.run_wrk(
                        target.url, target.script, conns, args.duration, cpus=wrk_cpus, nonce=nonce
                    )
                    result.other_cpu_pct = meter.other_cpu_percent(started)
                    if pgid is not None and cpu_before is not None and result.requests:
                        # The target's own CPU (all its processes) over the measured run: less
                        # disturbed by a busy machine than req/s, and what a layer costs.
                        cpu = group_cpu_seconds(pgid) - cpu_before
                        result.cpu_us_per_request = cpu / result.requests * 1e6
                except (RuntimeError, ValueError) as exc:
                    cell.error = str(exc)
                    print(
                        f"[{done}/{total}] c={conns} {target.name}: ERROR {exc}",
                        flush=True,
                    )
                    continue
                cell.runs.append(result)
                errs = f"  errors={result.errors}" if result.errors else ""
                if result.other_cpu_pct is not None and result.other_cpu_pct >= 5:
                    errs += f"  (others used {result.other_cpu_pct:.0f}% CPU)"
                print(
                    f"[{done}/{total}] c={conns:<3} round {rnd + 1}/{args.rounds}  {target.name:<28}"
                    f" {result.rps:9.0f} req/s  p50 {result.p50_ms:7.2f} ms"
                    f"  p99 {result.p99_ms:7.2f} ms{errs}",
                    flush=True,
                )
    return cells


def memory_of(procs: ProcessGroup, target: Target) -> float | None:
    child = next((c for c in procs.children if c.name == target.name), None)
    return private_memory_mib(child.pid) if child is not None and child.alive() else None


def stream_times(targets: list[Target]) -> dict[str, dict]:
    """Sequential streamed requests per target: TTFB and whole-stream time (stream_probe)."""
    out = {}
    for target in targets:
        try:
            times = probe(target.port, target.path, target.body, REQUEST_HEADERS, vary=VARY)
        except (OSError, RuntimeError) as exc:
            print(f"stream probe {target.name}: ERROR {exc}", flush=True)
            continue
        out[target.name] = vars(times)
        print(
            f"stream probe {target.name:<28} TTFB p50 {times.ttfb_p50_ms:6.2f} ms"
            f"  total p50 {times.total_p50_ms:6.2f} ms",
            flush=True,
        )
    return out


def plot(json_path: Path) -> Path | None:
    """The PNG next to the results (benchmarks.plot), when matplotlib is installed."""
    try:
        from benchmarks.plot import plot_results
    except ImportError:
        print("no plot: matplotlib is not installed (pip install -e '.[bench]')", flush=True)
        return None
    return plot_results(json_path)


# --- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0].strip()
    )

    def int_list(text: str) -> list[int]:
        return [int(x) for x in text.split(",") if x.strip()]

    def name_list(text: str) -> list[str]:
        names = [x.strip() for x in text.split(",") if x.strip()]
        unknown = set(names) - set(DEFAULT_TARGETS + EXTRA_TARGETS)
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown target(s) {sorted(unknown)}; known: {', '.join(DEFAULT_TARGETS + EXTRA_TARGETS)}"
            )
        return names

    parser.add_argument(
        "--targets",
        type=name_list,
        default=list(DEFAULT_TARGETS),
        help=f"comma-separated, default {','.join(DEFAULT_TARGETS)}; also {','.join(EXTRA_TARGETS)}",
    )
    parser.add_argument("--connections", type=int_list, default=[1, 16, 64], help="default 1,16,64")
    parser.add_argument("--duration", type=int, help="seconds per measured run (default 5, quick 2)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up before each run (default 1)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 2, quick 1)")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s: under a minute")
    parser.add_argument(
        "--sse",
        action="store_true",
        help="streaming workload (20-chunk event stream) instead of the JSON one",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin wrk to CPU 1 and the servers to CPU 0",
    )
    parser.add_argument(
        "--wait-quiet",
        type=int,
        default=0,
        metavar="SECONDS",
        help="first wait up to this long for other processes to leave the CPU idle",
    )
    parser.add_argument(
        "--upstream",
        choices=("auto", "nginx", "aiohttp"),
        default="auto",
        help="nginx when installed (auto), or the aiohttp fallback",
    )
    parser.add_argument("--json", type=Path, help="JSON output (default: next to the .md)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where the .md goes")
    args = parser.parse_args(argv)
    args.duration = args.duration or (2 if args.quick else 5)
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.warmup = 1 if args.warmup is None else args.warmup
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_signal_handlers()
    command = shlex.join(["python", "-m", "benchmarks.run", *(sys.argv[1:] if argv is None else argv)])
    pin = args.pin and (os.cpu_count() or 1) >= 2
    server_cpus, wrk_cpus = ("0", "1") if pin else (None, None)
    pinning = (
        "wrk pinned to CPU 1 (taskset), nginx and the Python servers to CPU 0" if pin else "no CPU pinning"
    )
    notes: list[str] = []
    if args.wait_quiet > 0:
        busy = wait_until_quiet(args.wait_quiet)
        if busy >= 5:
            notes.append(f"the machine did not get quiet in {args.wait_quiet} s ({busy:.0f}% CPU busy).")
    load_before = os.getloadavg()[0]
    started = datetime.now(UTC)
    stamp = started.strftime("%Y-%m-%d-%H%M%S")

    with (
        tempfile.TemporaryDirectory(prefix="asgi-llm-bench-") as tmp,
        ProcessGroup(Path(tmp)) as procs,
    ):
        workdir = Path(tmp)
        try:
            upstream = start_upstream(procs, workdir, server_cpus, sys.executable, args.upstream)
            if upstream.kind.startswith("aiohttp"):
                notes.append(f"upstream: {upstream.kind}, not nginx.")
            targets = build_targets(args.targets, upstream, workdir, args.sse, notes)
            targets = start_targets(procs, targets, server_cpus, notes)
            for target in targets:
                target.script = load.write_script(
                    workdir / f"{target.name}.lua",
                    target.body,
                    {**REQUEST_HEADERS, **(target.headers or {})},
                    vary=VARY if target.vary else None,
                )
            memory = {t.name: {"idle": memory_of(procs, t)} for t in targets if t.argv}
            cells_n = len(args.connections) * args.rounds * len(targets)
            eta = cells_n * (args.duration + args.warmup)
            print(
                f"{len(targets)} targets ({', '.join(t.name for t in targets)}), {cells_n} runs, "
                f"~{eta // 60}m{eta % 60:02d}s; {pinning}",
                flush=True,
            )
            for note in notes:
                print(f"note: {note}", flush=True)
            t0 = time.monotonic()
            cells = measure(targets, args, wrk_cpus, CpuMeter(procs))
            elapsed = time.monotonic() - t0
            for name, row in memory.items():
                row["after_load"] = memory_of(procs, next(t for t in targets if t.name == name))
            stream = stream_times(targets) if args.sse else {}
            for target in targets:
                child = next((c for c in procs.children if c.name == target.name), None)
                if child is not None and not child.alive():
                    notes.append(f"{target.name} died during the run: {tail(child.log, 5)}")
            machine = machine_facts(upstream)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping every server started here", file=sys.stderr)
            return 130
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    workload = (
        f"POST {SSE_PATH} (stream: true; {len(SSE_BODY)}-byte event stream, 20 chunks + usage + [DONE])"
        if args.sse
        else f"POST {CHAT_PATH} (non-streaming; {len(REQUEST_BODY)}-byte request, "
        f"{len(CHAT_COMPLETION)}-byte chat.completion response)"
    )
    meta = {
        "started_utc": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "machine": machine,
        "workload": workload,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "connections": args.connections,
        "pinning": pinning,
        "measure_seconds": round(elapsed, 1),
        "loadavg_1m_before": round(load_before, 2),
        "notes": notes,
        "memory_mib": memory,
        "stream": stream,
    }
    table = summarize(cells)
    report = markdown(table, meta)
    print("\n" + report)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    md_path = args.out_dir / f"{stamp}.md"
    md_path.write_text(report)
    json_path = args.json or md_path.with_suffix(".json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(
        json.dumps(
            {"meta": meta, "results": {str(c): rows for c, rows in table.items()}},
            indent=2,
        )
    )
    written = [_rel(md_path), _rel(json_path)]
    png = plot(json_path)
    if png is not None:
        written.append(_rel(png))
    print("wrote " + ", ".join(written))
    return 0


def _rel(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)


if __name__ == "__main__":
    sys.exit(main())
