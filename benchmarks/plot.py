"""The PNG of one benchmark run: req/s and added p50 latency by connection count, one line
per target (the upstream called directly is left out of both: it is the reference).

    python -m benchmarks.plot benchmarks/results/<stamp>.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def plot_results(json_path: Path) -> Path:
    data = json.loads(json_path.read_text())
    by_target: dict[str, list[tuple[int, float | None, float | None]]] = {}
    for conns, rows in data["results"].items():
        for row in rows:
            if row["target"] != "direct":
                by_target.setdefault(row["target"], []).append((int(conns), row["rps"], row["added_p50_ms"]))
    figure, (throughput, added) = plt.subplots(1, 2, figsize=(11, 4.2))
    for target, points in by_target.items():
        points.sort()
        style = "-o" if target.startswith("proxy") else "--."
        throughput.plot([p[0] for p in points], [p[1] for p in points], style, label=target)
        shown = [p for p in points if p[2] is not None]  # no `direct` target: nothing to add to
        added.plot([p[0] for p in shown], [p[2] for p in shown], style, label=target)
    for axis, title in (
        (throughput, "req/s (higher is better)"),
        (added, "added p50 latency vs direct, ms (lower is better)"),
    ):
        axis.set_xscale("log", base=2)
        axis.set_xticks(sorted({int(c) for c in data["results"]}))
        axis.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.set_xlabel("connections")
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
    if any(p[2] is not None and p[2] > 0 for points in by_target.values() for p in points):
        added.set_yscale("log")
    if by_target:
        throughput.legend(fontsize=8)
    meta = data["meta"]
    figure.suptitle(
        f"asgi-llm vs floors, {meta['started_utc']} ({meta['workload'].split(' (')[0]})", fontsize=10
    )
    figure.tight_layout()
    png = json_path.with_suffix(".png")
    figure.savefig(png, dpi=110)
    plt.close(figure)
    return png


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(plot_results(Path(arg)))
