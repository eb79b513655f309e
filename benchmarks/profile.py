"""Where the proxy's time goes: py-spy on one target under wrk.

    python -m benchmarks.profile                       # proxy-full, 16 connections, 15 s
    python -m benchmarks.profile --target proxy-hit --seconds 20

The upstream and the target start as in benchmarks.run (same pinning: server on CPU 0, wrk
on CPU 1); py-spy samples the server's process (`--nonblocking`, 250 Hz) while wrk runs.
Printed: each part of the stack's share of the samples (by source file, `PARTS`), then the
functions with the most samples of their own. The collapsed stacks are kept (`--out`) for a
flame graph. Needs py-spy (`pip install py-spy`) and permission to attach (root, or
ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import load
from benchmarks.procs import ProcessGroup, install_signal_handlers
from benchmarks.run import VARY, build_targets, start_targets
from benchmarks.upstream import REQUEST_HEADERS, start_upstream

# (name, path fragments of a frame's file): the first part whose fragment is in the
# innermost frame of our own code decides, else the innermost frame's library.
PARTS = (
    ("server guard, access log", ("asgi_llm/server/", "asgi_llm/logs.py", "logging/")),
    ("exchange (read, parse, validate)", ("asgi_llm/exchange.py", "asgi_llm/request.py")),
    ("metrics", ("asgi_llm/metrics/", "prometheus_client/")),
    ("auth", ("asgi_llm/auth/",)),
    ("admin, responses layers", ("asgi_llm/admin/", "asgi_llm/responses_api/")),
    ("rate limit", ("asgi_llm/ratelimit/", "limits/")),
    ("cache", ("asgi_llm/cache/", "aiocache/")),
    ("router", ("asgi_llm/routing/",)),
    ("provider attempt", ("asgi_llm/providers/", "asgi_llm/responses.py", "asgi_llm/sse.py")),
    ("aiohttp client", ("aiohttp/", "multidict/", "yarl/")),
    ("HTTP server", ("uvicorn/", "httptools/", "hypercorn/", "h11/", "h2/", "granian/")),
    ("asyncio, uvloop", ("asyncio/", "uvloop/")),
)


def part_of(stack: list[str]) -> str:
    """The part a sample counts for: its innermost frame that belongs to a known part."""
    for frame in reversed(stack):
        for name, fragments in PARTS:
            if any(fragment in frame for fragment in fragments):
                return name
    return "other"


def summarize(collapsed: Path, top: int) -> str:
    parts: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack_text.split(";")
        total += count
        parts[part_of(frames)] += count
        own[frames[-1]] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "| part | share |", "| --- | ---: |"]
    lines += [f"| {name} | {100 * n / total:.1f}% |" for name, n in parts.most_common()]
    lines += ["", "| function (own samples) | share |", "| --- | ---: |"]
    lines += [f"| `{name}` | {100 * n / total:.1f}% |" for name, n in own.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    description = __doc__.split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=description)
    parser.add_argument("--target", default="proxy-full", help="a proxy target of benchmarks.run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, help="keep the collapsed stacks here")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 1
    install_signal_handlers()
    with tempfile.TemporaryDirectory(prefix="asgi-llm-profile-") as tmp, ProcessGroup(Path(tmp)) as procs:
        workdir = Path(tmp)
        notes: list[str] = []
        upstream = start_upstream(procs, workdir, "0", sys.executable)
        built = build_targets([args.target], upstream, workdir, False, notes)
        targets = start_targets(procs, built, "0", notes)
        if not targets:
            print("\n".join(notes) or f"{args.target} did not start", file=sys.stderr)
            return 1
        target = targets[0]
        script = load.write_script(
            workdir / "load.lua", target.body, REQUEST_HEADERS, vary=VARY if target.vary else None
        )
        load.run_wrk(target.url, script, args.connections, 2, cpus="1", nonce="warm")
        child = next(c for c in procs.children if c.name == target.name)
        collapsed = args.out or workdir / "stacks.txt"
        spy = subprocess.Popen(
            [py_spy, "record", "--nonblocking", "--rate", "250", "--format", "raw", "--function"]
            + ["--duration", str(args.seconds), "--output", str(collapsed), "--pid", str(child.pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)  # py-spy attaches
        result = load.run_wrk(target.url, script, args.connections, args.seconds, cpus="1", nonce="run")
        spy.wait(timeout=args.seconds + 30)
        print(f"{target.name}: {result.rps:,.0f} req/s at {args.connections} connections while sampled\n")
        print(summarize(collapsed, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
