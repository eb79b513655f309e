"""Child processes for the benchmark: start them, wait for their port, always stop them.

Every child is started in its own session (process group), so stopping it also stops
what it forked (nginx's worker, for instance). ``ProcessGroup`` stops them all on exit,
on an exception and on Ctrl-C; ``install_signal_handlers`` turns SIGTERM/SIGHUP into
``KeyboardInterrupt`` so that the ``finally`` blocks run then too. On Linux each child
also asks the kernel for SIGTERM if the harness itself is killed (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with (
        contextlib.suppress(OSError),
        socket.create_connection((host, port), timeout=0.2),
    ):
        return True
    return False


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Linux: SIGTERM this child when the harness dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def install_signal_handlers() -> None:
    """Make SIGTERM and SIGHUP unwind the stack like Ctrl-C does."""

    def _raise(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGHUP, _raise)


class Child:
    """One started process with its log file."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.popen = popen
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the child's process group, then SIGKILL it if it lingers."""
        if self.popen.returncode is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


class ProcessGroup:
    """Starts children and stops every one of them when the ``with`` block ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpus: str | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Child:
        log = self.log_dir / f"{name}.log"
        if cpus is not None:
            argv = ["taskset", "-c", cpus, *argv]
        with log.open("wb") as out:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
                # The harness is single-threaded, so preexec_fn is safe here.
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
            )
        child = Child(name, popen, log)
        self.children.append(child)
        return child

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        # Newest first: servers that depend on the upstream go before it.
        while self.children:
            self.children.pop().stop()


def wait_for_port(child: Child, port: int, timeout: float = 20.0) -> None:
    """Block until ``port`` accepts connections; raise if the child dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited with code {child.popen.returncode}:\n{tail(child.log)}")
        if port_open(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} did not listen on port {port} in {timeout:.0f}s:\n{tail(child.log)}")


# --- how much CPU others used during a run ------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def busy_seconds() -> float:
    """user + nice + system time of all CPUs since boot (/proc/stat), in seconds."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system = (int(x) for x in fields[:3])
    return (user + nice + system) / _TICK


def group_cpu_seconds(pgid: int) -> float:
    """CPU (user + system) the live processes of one process group have used so far."""
    return _group_seconds({pgid})


def _group_seconds(pgids: set[int]) -> float:
    """utime + stime of the live processes in the given process groups."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            rest = stat.read_text().rsplit(")", 1)[1].split()
            if int(rest[2]) in pgids:  # fields after the name: state ppid pgrp ...
                total += int(rest[11]) + int(rest[12])  # utime stime
    return total / _TICK


class CpuMeter:
    """CPU that processes other than ours used while a measurement ran.

    ``ours`` is this harness, the children it has reaped (wrk) and every live process
    in the children's process groups (servers, nginx's worker). ``other`` is the rest
    of the machine's user+system time: another build or test run on the same cores,
    which makes numbers low and noisy. Softirq time is left out on both sides.
    Linux only; elsewhere it reports nothing.
    """

    def __init__(self, procs: ProcessGroup) -> None:
        self.procs = procs
        self.enabled = Path("/proc/stat").exists()

    def _sample(self) -> tuple[float, float, float]:
        times = os.times()
        own = times.user + times.system + times.children_user + times.children_system
        pgids = {child.pid for child in self.procs.children}
        return time.monotonic(), busy_seconds(), own + _group_seconds(pgids)

    def start(self) -> tuple[float, float, float] | None:
        return self._sample() if self.enabled else None

    def other_cpu_percent(self, started: tuple[float, float, float] | None) -> float | None:
        """Others' CPU since ``started``, in percent of one core (max = 100 x nproc)."""
        if started is None:
            return None
        wall, busy, ours = (b - a for a, b in zip(started, self._sample(), strict=True))
        return max(0.0, 100.0 * (busy - ours) / wall) if wall > 0 else None


def wait_until_quiet(timeout_s: float, threshold_pct: float = 5.0, sample_s: float = 3.0) -> float:
    """Wait (up to ``timeout_s``) until the machine's CPU use over ``sample_s`` is below
    ``threshold_pct`` of one core, before anything of ours runs; returns the last reading."""
    deadline = time.monotonic() + timeout_s
    while True:
        b0, t0 = busy_seconds(), time.monotonic()
        time.sleep(sample_s)
        pct = 100.0 * (busy_seconds() - b0) / (time.monotonic() - t0)
        if pct < threshold_pct or time.monotonic() + sample_s > deadline:
            return pct
        print(f"waiting for a quiet machine: others use {pct:.0f}% CPU", flush=True)
        time.sleep(min(10.0, max(0.0, deadline - time.monotonic() - sample_s)))


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def private_memory_mib(pid: int) -> float | None:
    """RssAnon + VmSwap of a process and its descendants (VmRSS would count shared pages
    and the mapped files of every library): what the process really costs."""
    total_kb, pending, seen = 0, [pid], False
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        seen = True
        for line in status.splitlines():
            if line.startswith(("RssAnon:", "VmSwap:")):
                total_kb += int(line.split()[1])
        pending += _children(current)
    return total_kb / 1024 if seen else None
