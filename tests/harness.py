"""Real `asgi-llm serve` processes for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2

# Every HTTP server `asgi-llm serve --server` runs; tests that depend on the server (its
# parser, its shutdown, its logging) run on each of them through the `server` fixture.
SERVERS = ("uvicorn", "granian", "hypercorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_STARTED = ("Application startup complete.", "Running on", "Started worker")


class ProxyServer:
    """`python -m asgi_llm serve` on a free loopback port, with a config written to disk."""

    def __init__(
        self,
        config: dict[str, Any] | str | Path | None,
        workdir: Path,
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
        server: str | None = None,
    ) -> None:
        self.port = free_port()
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.root_url + "/v1"
        self.log_path = workdir / f"proxy-{self.port}.log"
        args = [
            sys.executable,
            "-m",
            "asgi_llm",
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            *(("--server", server) if server else ()),
            *extra_args,
        ]
        if isinstance(config, (str, Path)):
            self.config_path = Path(config)
            args += ["--config", str(self.config_path)]
        elif config is not None:
            self.config_path = workdir / f"proxy-{self.port}.json"
            self.config_path.write_text(json.dumps(config))
            args += ["--config", str(self.config_path)]
        environ = {k: v for k, v in os.environ.items() if k not in ("ASGI_LLM_CONFIG", "OPENAI_API_KEY")}
        environ.update(env or {})
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=environ)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()  # else its ResourceWarning fails a later test, not this one
                raise RuntimeError(f"proxy exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx2.get(self.root_url + "/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.05)
        self._stop_process()
        raise RuntimeError(f"proxy did not become ready:\n{self.log()}")

    def workers_started(self) -> int:
        """Workers that finished starting, by their server's own line (uvicorn says
        "Application startup complete.", hypercorn "Running on", granian "Started worker")."""
        text = self.log()
        return sum(text.count(marker) for marker in _STARTED)

    def log(self) -> str:
        """What the server wrote, in whole lines while it runs (a line being written is left
        for the next read: a reader must never see half a JSON line)."""
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace")
        if self.process.poll() is None and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
        return text

    def stop(self) -> None:
        self._stop_process()
        from tests.conftest import find_secrets

        leaked = find_secrets(self.log())
        assert not leaked, f"key material in the server log: {leaked[:3]}"

    def _stop_process(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> ProxyServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
