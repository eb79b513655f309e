"""Benchmark harness for asgi-llm: the proxy's own cost against the same local upstream.

Modules:

- ``procs``    -- starting, waiting for and cleaning up child processes; free ports.
- ``upstream`` -- the fixed-response upstream (nginx, or an aiohttp fallback) and the payloads.
- ``floors``   -- minimal Starlette forwarders (httpx2, aiohttp, httpx2 over aiohttp) on hypercorn.
- ``load``     -- running ``wrk`` and parsing its output.
- ``report``   -- medians per cell, ratios, the Markdown report, machine facts.
- ``run``      -- the orchestrator: ``python -m benchmarks.run`` (``make bench``).
"""
