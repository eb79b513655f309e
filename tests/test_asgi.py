"""`asgi_llm.asgi:app` under the servers' own command lines (not `asgi-llm serve`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from tests.harness import free_port
from tests.test_server import BROKEN_STARTUP
from tests.waiting import wait_until

CONFIG = {"models": [{"name": "m", "deployments": [{"id": "m", "provider": "mock", "model": "m"}]}]}
COMMANDS = {
    "hypercorn": ["-m", "hypercorn", "asgi_llm.asgi:app", "--bind", "127.0.0.1:{port}"],
    "uvicorn": ["-m", "uvicorn", "asgi_llm.asgi:app", "--port", "{port}", "--no-access-log"],
    "granian": ["-m", "granian", "--interface", "asgi", "--port", "{port}", "asgi_llm.asgi:app"],
}


def start(command: str, tmp_path: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    config = tmp_path / "proxy.json"
    config.write_text(json.dumps(CONFIG))
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    environ.update({"ASGI_LLM_CONFIG": str(config), **(env or {})})
    argv = [sys.executable, *(part.format(port=port) for part in COMMANDS[command])]
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=environ, cwd=tmp_path)
    log.close()
    return process, port


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_servers_own_cli_serves_the_stack_from_asgi_llm_config(tmp_path, command):
    process, port = start(command, tmp_path)
    try:

        def ready() -> bool:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                return httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx2.TransportError:
                return False

        wait_until(ready, timeout=30, message=f"{command} serving asgi_llm.asgi:app")
        reply = httpx2.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert reply.status_code == 200 and reply.json()["model"] == "m"
        assert reply.headers["x-request-id"]
        refused = httpx2.get(f"http://127.0.0.1:{port}/healthz", headers={"x-big": "a" * 20_000})
        assert refused.status_code == 431  # RequestGuard is outermost
    finally:
        stop(process)
    # uvicorn's command re-raises the SIGTERM it handled once it has shut down
    assert process.returncode in (0, -signal.SIGTERM), (tmp_path / "server.log").read_text()


def test_under_hypercorns_cli_a_failed_startup_stops_it_with_the_reason(tmp_path):
    """The stack owns its lifespan there too: a layer that cannot start stops hypercorn."""
    (tmp_path / "sitecustomize.py").write_text(BROKEN_STARTUP)
    pythonpath = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    process, _ = start("hypercorn", tmp_path, env={"PYTHONPATH": pythonpath})
    try:
        process.wait(30)  # it stops by itself (hypercorn's command exits 0 all the same)
    finally:
        stop(process)
    log = (tmp_path / "server.log").read_text()
    assert "without Lifespan" not in log
    assert "RateLimitMiddleware startup failed: OSError: storage exploded" in log


def test_importing_asgi_llm_builds_nothing():
    """Only `asgi_llm.asgi` builds a stack (and reads ASGI_LLM_CONFIG) when imported."""
    code = "import asgi_llm, asgi_llm.server, sys; print('asgi_llm.asgi' in sys.modules)"
    environ = {**os.environ, "ASGI_LLM_CONFIG": "/nonexistent/proxy.yaml"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
