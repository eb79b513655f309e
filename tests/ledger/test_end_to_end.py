"""The ledger through real `asgi-llm serve` processes and a fake upstream: what lands in the
database is what the upstream reported, request by request, written at the latest when the
server is stopped (SIGTERM drains the queue); three replicas share one PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest

from asgi_llm.config.schema import Ledger as LedgerSettings
from asgi_llm.ledger.service import open_store
from asgi_llm.ledger.store import Cursor, Filters
from tests.conftest import upstream_model
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.harness import ProxyServer

COST = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}


def config(url: str, one: FakeUpstream, two: FakeUpstream, **ledger: Any) -> dict[str, Any]:
    return {
        "models": [
            upstream_model("solo", one.base_url, cost=COST),
            upstream_model("pair", one.base_url, two.base_url, cost=COST),
        ],
        "routing": {"retries": 1, "min_retries_in_flight": 1000},
        "cache": {"backend": "memory://"},
        "ledger": {"url": url, **ledger},
    }


def chat(client: httpx2.Client, model: str, text: str, request_id: str) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    response = client.post("/v1/chat/completions", json=body, headers={"x-request-id": request_id})
    assert response.status_code == 200, response.text
    return dict(response.json()["usage"])


def stream(client: httpx2.Client, model: str, text: str, request_id: str) -> dict[str, Any]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    usage = None
    with client.stream("POST", "/v1/chat/completions", json=body, headers={"x-request-id": request_id}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: {"):
                usage = json.loads(line[6:]).get("usage") or usage
    assert usage is not None
    return dict(usage)


async def rows_of(url: str) -> dict[str, dict[str, Any]]:
    store = open_store(LedgerSettings(url=url))
    try:
        rows: list[dict[str, Any]] = []
        while True:  # every page
            page = await store.requests(
                Filters(), 1000, Cursor(rows[-1]["ts"], rows[-1]["id"]) if rows else None
            )
            rows += page
            if len(page) < 1000:
                break
        for row in rows:
            row["attempt_log"] = await store.attempts(row["id"])
        return {row["request_id"]: row for row in rows}
    finally:
        await store.aclose()


def test_every_kind_of_request_is_recorded_as_the_upstream_reported_it(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    with FakeUpstream("one") as one, FakeUpstream("two") as two:
        # A long flush interval: nothing is written before SIGTERM, which must drain it all.
        server = ProxyServer(config(url, one, two, flush_interval_s=60), tmp_path)
        seen: dict[str, dict[str, Any]] = {}
        with server, httpx2.Client(base_url=server.root_url, timeout=20) as client:
            seen["chat"] = chat(client, "solo", "one two three", "e2e-chat")
            seen["stream"] = stream(client, "solo", "four five", "e2e-stream")
            one.script(Behavior(status=500))  # pair-0 fails: pair-1 on `two` answers
            seen["failover"] = chat(client, "pair", "six seven eight nine", "e2e-failover")
            chat(client, "solo", "one two three", "e2e-hit")  # the same request again: a hit
            one.script(Behavior(chunks=50, chunk_delay_s=0.05))
            body = {"model": "solo", "messages": [{"role": "user", "content": "ten"}], "stream": True}
            with client.stream(
                "POST", "/v1/chat/completions", json=body, headers={"x-request-id": "e2e-gone"}
            ) as r:
                next(r.iter_raw())  # the first bytes, then the client leaves
            assert one.wait_for_disconnect(10) is not None
        rows = asyncio.run(rows_of(url))

    assert set(rows) == {"e2e-chat", "e2e-stream", "e2e-failover", "e2e-hit", "e2e-gone"}
    for name in ("chat", "stream", "failover"):
        row, usage = rows[f"e2e-{name}"], seen[name]
        assert (row["input_tokens"], row["output_tokens"]) == (
            usage["prompt_tokens"],
            usage["completion_tokens"],
        )
        assert row["cost_usd"] == pytest.approx(
            (usage["prompt_tokens"] + 2 * usage["completion_tokens"]) / 1e6
        )
        assert row["status"] == 200 and row["cache"] == "miss" and row["client_gone"] is False
    assert rows["e2e-stream"]["stream"] is True and rows["e2e-stream"]["ttft_ms"] > 0
    failover = rows["e2e-failover"]
    assert failover["attempts"] == 2 and failover["deployment"] == "pair-1"
    assert [(a["deployment"], a["status"]) for a in failover["attempt_log"]] == [
        ("pair-0", 500),
        ("pair-1", 200),
    ]
    hit = rows["e2e-hit"]
    assert hit["cache"] == "hit" and hit["cache_kind"] == "exact" and hit["attempts"] == 0
    assert (hit["input_tokens"], hit["output_tokens"], hit["cost_usd"]) == (0, 0, 0.0)
    assert hit["saved_usd"] == pytest.approx(rows["e2e-chat"]["cost_usd"])
    gone = rows["e2e-gone"]
    assert gone["client_gone"] is True and gone["stream"] is True
    assert 0 < gone["output_tokens"] < 50  # charged what was delivered, not the whole answer


def test_three_replicas_share_one_postgresql_without_losing_or_doubling_a_record(tmp_path, pg_url):
    # 300 keeps the suite fast; the 3,000: ASGI_LLM_LEDGER_FLEET_REQUESTS=3000.
    total = int(os.environ.get("ASGI_LLM_LEDGER_FLEET_REQUESTS", "300"))
    with FakeUpstream("one") as one, FakeUpstream("two") as two:
        document = config(pg_url, one, two, flush_interval_s=0.05, batch_size=50)
        servers = [ProxyServer(document, tmp_path) for _ in range(3)]
        try:
            one.script(*[Behavior(status=503) for _ in range(10)])  # ten failovers to `two`

            async def run() -> dict[str, dict[str, Any]]:
                clients = [httpx2.AsyncClient(base_url=s.root_url, timeout=30) for s in servers]
                limit = asyncio.Semaphore(24)

                async def one_request(n: int) -> tuple[str, dict[str, Any]]:
                    client = clients[n % 3]
                    request_id = f"fleet-{n}-{uuid.uuid4().hex[:6]}"
                    words = " ".join(["w"] * (1 + n % 7))  # repeats: some are cache hits
                    body: dict[str, Any] = {"model": "pair", "messages": [{"role": "user", "content": words}]}
                    async with limit:
                        if n % 5 == 0:
                            body.update(stream=True, stream_options={"include_usage": True})
                            usage = None
                            async with client.stream(
                                "POST",
                                "/v1/chat/completions",
                                json=body,
                                headers={"x-request-id": request_id},
                            ) as r:
                                assert r.status_code == 200
                                async for line in r.aiter_lines():
                                    if line.startswith("data: {"):
                                        usage = json.loads(line[6:]).get("usage") or usage
                            return request_id, dict(usage or {})
                        response = await client.post(
                            "/v1/chat/completions", json=body, headers={"x-request-id": request_id}
                        )
                        assert response.status_code == 200, response.text
                        return request_id, dict(response.json()["usage"])

                try:
                    return dict(await asyncio.gather(*(one_request(n) for n in range(total))))
                finally:
                    for client in clients:
                        await client.aclose()

            seen = asyncio.run(run())
        finally:
            for server in servers:
                server.stop()
        rows = asyncio.run(rows_of(pg_url))

    assert len(rows) == total and set(rows) == set(seen)  # none lost, none doubled
    misses = [r for r in rows.values() if r["cache"] != "hit"]
    hits = [r for r in rows.values() if r["cache"] == "hit"]
    assert hits and sum(r["attempts"] == 2 for r in misses) >= 1
    assert sum(r["input_tokens"] for r in misses) == sum(
        seen[r["request_id"]]["prompt_tokens"] for r in misses
    )
    assert sum(r["output_tokens"] for r in misses) == sum(
        seen[r["request_id"]]["completion_tokens"] for r in misses
    )
    assert all(r["input_tokens"] == r["output_tokens"] == 0 for r in hits)


def test_worker_processes_share_one_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    with FakeUpstream("one") as one, FakeUpstream("two") as two:
        server = ProxyServer(config(url, one, two, flush_interval_s=0.05), tmp_path, workers=2)

        def client_run(k: int) -> dict[str, dict[str, Any]]:
            # A connection per request, eight clients at once: the kernel hands them to both
            # workers (which one takes each is its choice, so the test does not insist).
            close = {"connection": "close"}
            with httpx2.Client(base_url=server.root_url, timeout=20, headers=close) as client:
                return {f"w-{k}-{n}": chat(client, "solo", f"words {k} {n}", f"w-{k}-{n}") for n in range(10)}

        with server, ThreadPoolExecutor(8) as pool:
            seen = {rid: usage for part in pool.map(client_run, range(8)) for rid, usage in part.items()}
        rows = asyncio.run(rows_of(url))
    assert set(rows) == set(seen) and len(rows) == 80
    assert sum(r["input_tokens"] for r in rows.values()) == sum(u["prompt_tokens"] for u in seen.values())
