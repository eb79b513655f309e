"""The Ledger service follows the config: a reload that moves `ledger.url` sends what comes
next to the new database, one that removes the section stops recording."""

from __future__ import annotations

import json
from typing import Any

import httpx2

from asgi_llm import Config, ConfigManager, build_app
from asgi_llm.config.schema import Ledger as LedgerSettings
from asgi_llm.ledger.service import open_store
from asgi_llm.ledger.store import Filters
from asgi_llm.lifespan import lifespan
from tests.conftest import mock_model
from tests.waiting import await_until

CHAT = {"model": "m1", "messages": [{"role": "user", "content": "hello"}]}


async def request_ids(url: str) -> list[str]:
    store = open_store(LedgerSettings(url=url))
    try:
        return sorted(r["request_id"] for r in await store.requests(Filters(), 100, None))
    finally:
        await store.aclose()


async def test_a_reload_moves_the_ledger_or_turns_it_off(tmp_path):
    first, second = f"sqlite:///{tmp_path}/first.db", f"sqlite:///{tmp_path}/second.db"
    path = tmp_path / "proxy.json"

    def write(ledger: dict[str, Any] | None) -> None:
        document: dict[str, Any] = {"models": [mock_model("m1")], "reload": {"watch": False}}
        if ledger is not None:
            document["ledger"] = {"flush_interval_s": 0.01, **ledger}
        path.write_text(json.dumps(document))

    write({"url": first})
    app = build_app(ConfigManager(Config.from_file(path)))
    async with lifespan(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://proxy.test") as client:

            async def chat(request_id: str) -> None:
                headers = {"x-request-id": request_id}
                assert (
                    await client.post("/v1/chat/completions", json=CHAT, headers=headers)
                ).status_code == 200

            await chat("one")
            await await_until(lambda: app.services.ledger.writer.written == 1)
            write({"url": second})
            assert app.configs.reload().ok
            await chat("two")
            await await_until(lambda: app.services.ledger.writer.written == 2)
            write(None)
            assert app.configs.reload().ok
            await chat("three")
    assert await request_ids(first) == ["one"]
    assert await request_ids(second) == ["two"]
