"""The CI-sized benchmark smoke: the full default stack against the aiohttp-client floor on
the same server (uvicorn on httptools), 16 connections, a few seconds each
(benchmarks/run.py, ~20 s in all).

Shared CI machines are noisy, so it fails only on a large regression: the proxy's share of
the floor's throughput falling below half the ratio stored in benchmarks/baseline.json
(a ratio, never an absolute time). `make bench` is the real measurement.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from benchmarks import run

BASELINE = json.loads((Path(run.ROOT) / "benchmarks" / "baseline.json").read_text())


@pytest.mark.timeout(240)
def test_the_full_stack_keeps_its_share_of_the_floor(tmp_path):
    if shutil.which("wrk") is None:
        if os.environ.get("ASGI_LLM_REQUIRE_BENCH") == "1":
            pytest.fail("wrk is not installed and ASGI_LLM_REQUIRE_BENCH=1")
        pytest.skip("wrk is not installed (apt-get install wrk): no benchmark smoke")
    code = run.main(
        [
            "--targets",
            "floor-aiohttp-uvicorn,proxy-full",
            "--connections",
            "16",
            "--duration",
            "3",
            "--rounds",
            "1",
            "--out-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    (results,) = tmp_path.glob("*.json")
    rows = {row["target"]: row for row in json.loads(results.read_text())["results"]["16"]}
    floor_row = rows["floor-aiohttp-uvicorn"]
    assert rows["proxy-full"]["errors"] == 0 and floor_row["errors"] == 0
    ratio = rows["proxy-full"]["rps"] / floor_row["rps"]
    floor = BASELINE["full_stack_vs_aiohttp_floor_c16"] * BASELINE["regression_factor"]
    assert ratio >= floor, f"full stack at {ratio:.2f}x of the floor, baseline allows {floor:.2f}x"
