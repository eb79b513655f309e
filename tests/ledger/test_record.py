"""What a record holds, read through the admin API of an in-process stack on SQLite: content
only when asked for and redacted, the user, the tags and their bounds."""

from __future__ import annotations

import json
from typing import Any

from asgi_llm.auth.keys import hash_key
from tests.conftest import mock_model
from tests.waiting import await_until

ROOT_KEY = "sk-root-0123456789"
ROOT = {"authorization": f"Bearer {ROOT_KEY}"}
# Key material a prompt may quote: none of it may reach the ledger.
QUOTED = "AKIAABCDEFGHIJKLMNOP and Bearer abc.def.ghi and postgresql://app:hunter2@db/x"


def document(tmp_path, **ledger: Any) -> dict[str, Any]:
    return {
        "models": [mock_model("m1")],
        "auth": {
            "api_keys": [{"id": "root", "key_sha256": hash_key(ROOT_KEY), "roles": ["admin"]}],
            "roles": {"admin": {"models": ["*"], "endpoints": ["*"], "admin": True}},
        },
        "ledger": {"url": f"sqlite:///{tmp_path}/ledger.db", "flush_interval_s": 0.01, **ledger},
    }


async def one_record(client, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Send `body` as a chat request; the ledger's record of it, attempts and content included."""
    if body.get("stream"):
        async with client.stream(
            "POST", "/v1/chat/completions", json=body, headers={**ROOT, **(headers or {})}
        ) as response:
            assert response.status_code == 200
            await response.aread()
    else:
        response = await client.post("/v1/chat/completions", json=body, headers={**ROOT, **(headers or {})})
        assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]

    async def written() -> Any:
        answer = await client.get(f"/admin/requests/{request_id}", headers=ROOT)
        return answer.json() if answer.status_code == 200 else None

    return await await_until(written)  # type: ignore[no-any-return]


def chat(**extra: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": f"Use {QUOTED}."}, {"role": "user", "content": "hello there"}]
    return {"model": "m1", "messages": messages, **extra}


async def test_content_is_kept_only_when_asked_and_never_with_a_credential(asgi_client, tmp_path):
    plain = await one_record(asgi_client(document(tmp_path)), chat())
    assert plain["prompt"] is None and plain["completion"] is None

    client = asgi_client(document(tmp_path / "content", store_content=True))
    for body in (chat(), chat(stream=True)):
        record = await one_record(client, body)
        prompt = json.loads(record["prompt"])
        assert prompt["messages"][1] == {"role": "user", "content": "hello there"}
        for secret in ("AKIAABCDEFGHIJKLMNOP", "abc.def.ghi", "hunter2"):
            assert secret not in record["prompt"]
        assert "***" in prompt["messages"][0]["content"]
        completion = json.loads(record["completion"])
        assert completion[0]["message"]["content"] == "This is mock-1 answering: hello there"


async def test_the_user_comes_from_the_header_else_the_body_bounded(asgi_client, tmp_path):
    client = asgi_client(document(tmp_path))
    assert (await one_record(client, chat(user="body-user"), {"x-llm-user": "header-user"}))[
        "user"
    ] == "header-user"
    assert (await one_record(client, chat(user="body-user")))["user"] == "body-user"
    assert len((await one_record(client, chat(), {"x-llm-user": "u" * 1000}))["user"]) == 256

    other = asgi_client(document(tmp_path / "other", user_header="x-end-user"))
    assert (await one_record(other, chat(), {"x-end-user": "alice", "x-llm-user": "bob"}))["user"] == "alice"


async def test_tags_come_from_metadata_and_the_header_bounded(asgi_client, tmp_path):
    client = asgi_client(document(tmp_path))
    metadata = {"team": "search", "run": 7, "ok": True, "nested": {"no": 1}, "long": "v" * 1000}
    record = await one_record(client, chat(metadata=metadata), {"x-llm-tags": "team=ads, exp=b, solo"})
    assert record["tags"] == {
        "team": "ads",
        "run": "7",
        "ok": "true",
        "long": "v" * 256,
        "exp": "b",
        "solo": "",
    }
    many = {f"k{i}": str(i) for i in range(40)}
    assert len((await one_record(client, chat(metadata=many)))["tags"]) == 16
