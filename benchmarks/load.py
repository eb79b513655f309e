"""The load generator: ``wrk`` with a Lua script that POSTs a body.

``wrk -t1 -c{C} -d{D}s --latency -s post.lua URL`` (one thread: wrk needs -t <= -c and
the machine has two cores). The script's ``done()`` also prints one ``BENCH_JSON {...}``
line with the exact percentiles (microseconds) and error counts; the human-readable
output is parsed too (``parse_wrk_text``), is kept in the result, and stands in if that
line is missing. Responses that are not 2xx/3xx are counted ("Non-2xx or 3xx
responses"), as are socket errors.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

LUA_TEMPLATE = """\
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
{vary}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"bytes\\":%d," ..
    "\\"non2xx\\":%d,\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,\\"timeout\\":%d," ..
    "\\"p50_us\\":%d,\\"p75_us\\":%d,\\"p90_us\\":%d,\\"p99_us\\":%d,\\"p999_us\\":%d," ..
    "\\"mean_us\\":%.1f,\\"max_us\\":%d}}\\n",
    summary.requests, summary.duration, summary.bytes,
    e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.mean, latency.max))
end
"""


# With `vary`, every request differs (a response cache always misses): the first `marker`
# in the body becomes `marker <nonce>-<n>`, the nonce given per wrk run (run_wrk's `nonce`).
VARY_TEMPLATE = """\
local nonce, n = "", 0
init = function(args) nonce = args[1] or "" end
request = function()
  n = n + 1
  local body = string.gsub(wrk.body, "{marker}", "{marker} " .. nonce .. "-" .. n, 1)
  return wrk.format(nil, nil, nil, body)
end
"""


def write_script(path: Path, body: str, headers: dict[str, str], *, vary: str | None = None) -> Path:
    if "]==]" in body:
        raise ValueError("body would end the Lua long string")
    if vary is not None and (vary not in body or not vary.replace(" ", "").isalnum()):
        raise ValueError("the vary marker must be plain words that occur in the body")
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    varying = VARY_TEMPLATE.replace("{marker}", vary) if vary else ""
    path.write_text(LUA_TEMPLATE.format(body=body, headers=lines, vary=varying))
    return path


@dataclass
class WrkResult:
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float | None = None
    mean_ms: float | None = None
    max_ms: float | None = None
    non2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    other_cpu_pct: float | None = None  # CPU used by other processes meanwhile (set by run)
    cpu_us_per_request: float | None = None  # the target's own CPU per request (set by run)
    raw: str = ""

    @property
    def errors(self) -> int:
        return self.non2xx + sum(self.socket_errors.values())

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("raw")
        return data


# --- parsing wrk's text output ---------------------------------------------------------

_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {value!r}")
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


def parse_wrk_text(text: str, connections: int = 0) -> WrkResult:
    """Parse wrk's human-readable report (needs ``--latency`` for the percentiles)."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in ([\d.]+\w+)", text)
    if not rps or not total:
        raise ValueError(f"no wrk summary in output:\n{text}")
    pct = {int(p): _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.MULTILINE)}
    if len(pct) != 4:
        raise ValueError(f"no latency distribution (was --latency given?):\n{text}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    names = ("connect", "read", "write", "timeout")
    return WrkResult(
        connections=connections,
        duration_s=_ms(total.group(2)) / 1e3,
        requests=int(total.group(1)),
        rps=float(rps.group(1)),
        p50_ms=pct[50],
        p75_ms=pct[75],
        p90_ms=pct[90],
        p99_ms=pct[99],
        non2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=dict(zip(names, map(int, sock.groups()), strict=True)) if sock else {},
        raw=text,
    )


def parse_wrk_output(text: str, connections: int) -> WrkResult:
    """The ``BENCH_JSON`` line when present (exact values), else the text report."""
    result = parse_wrk_text(text, connections)
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        return result
    data = json.loads(line.removeprefix("BENCH_JSON "))
    result.duration_s = data["duration_us"] / 1e6
    result.requests = data["requests"]
    result.rps = data["requests"] / result.duration_s if result.duration_s else 0.0
    for p in ("p50", "p75", "p90", "p99", "p999"):
        setattr(result, f"{p}_ms", data[f"{p}_us"] / 1e3)
    result.mean_ms = data["mean_us"] / 1e3
    result.max_ms = data["max_us"] / 1e3
    result.non2xx = data["non2xx"]
    result.socket_errors = {k: data[k] for k in ("connect", "read", "write", "timeout")}
    return result


# --- running wrk ----------------------------------------------------------------------


def wrk_binary() -> str:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed: apt-get update && apt-get install -y wrk")
    return binary


def wrk_version() -> str:
    out = subprocess.run([wrk_binary(), "-v"], capture_output=True, text=True, check=False)
    first = (out.stdout + out.stderr).splitlines()[0]
    return first.split(" Copyright")[0].strip()


def run_wrk(
    url: str,
    script: Path,
    connections: int,
    duration_s: int,
    *,
    cpus: str | None = None,
    timeout_s: int = 5,
    nonce: str | None = None,
) -> WrkResult:
    argv = [
        wrk_binary(),
        "-t1",
        f"-c{connections}",
        f"-d{duration_s}s",  # wrk takes whole seconds only
        f"--timeout={timeout_s}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    if nonce is not None:
        argv += ["--", nonce]
    if cpus is not None:
        argv = ["taskset", "-c", cpus, *argv]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=duration_s + 30)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"wrk did not finish within {duration_s + 30} s") from exc
        except BaseException:  # Ctrl-C, SIGTERM: never leave wrk behind
            proc.kill()
            proc.wait()
            raise
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {stderr.strip() or stdout}")
    return parse_wrk_output(stdout, connections)
