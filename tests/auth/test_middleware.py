"""AuthMiddleware in the full stack: keys, RBAC, model allow-list, admin, audit."""

from __future__ import annotations

import json
import time

import pytest

from asgi_llm import Config
from tests.auth.conftest import KEYS, auth_config, bearer
from tests.conftest import assert_error_shape

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def chat(model):
    return {**CHAT, "model": model}


@pytest.fixture
def client(asgi_client, tmp_path):
    config = auth_config(audit_log={"path": str(tmp_path / "audit.jsonl")})
    return asgi_client(config)


async def test_no_key_is_401(client):
    assert_error_shape(await client.post("/v1/chat/completions", json=chat("mini")), 401, "invalid_api_key")
    assert_error_shape(
        await client.post("/v1/chat/completions", json=chat("mini"), headers=bearer("sk-wrong")),
        401,
        "invalid_api_key",
    )


async def test_every_401_is_invalid_api_key_and_the_audit_keeps_why(asgi_client, idp, attacker_key, tmp_path):
    """Every 401 is `authentication_error` / `invalid_api_key` (the contract; OpenAI's SDKs
    match on it), whatever the cause; the message and the audit line say which cause."""
    from joserfc import jwt

    path = tmp_path / "audit.jsonl"
    client = asgi_client(auth_config(idp, audit_log={"path": str(path)}))
    forged = jwt.encode({"alg": "RS256", "kid": "rsa-1"}, idp.claims(), attacker_key, algorithms=["RS256"])
    cases = [
        ({}, "", "missing_api_key"),
        (bearer(""), "", "missing_api_key"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "", "invalid_api_key"),
        (bearer(KEYS["alice"]), "?api_key=x", "invalid_api_key"),
        (bearer(forged), "", "invalid_token"),
        (bearer(idp.token(exp=int(time.time()) - 120)), "", "token_expired"),
        (bearer("opaque-inactive-token"), "", "invalid_token"),
    ]
    messages = []
    for headers, query, _ in cases:
        response = await client.post("/v1/chat/completions" + query, json=chat("mini"), headers=headers)
        error = assert_error_shape(response, 401, "invalid_api_key")
        assert error["type"] == "authentication_error"
        messages.append(error["message"])
    assert "No API key" in messages[0] and "expired" in messages[5]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["outcome"], line["reason"]) for line in lines] == [("deny", why) for *_, why in cases]


@pytest.mark.parametrize("payload", ["' OR pg_sleep(8)--", "*", "sk-\r\nx", "../../etc/passwd"])
async def test_injection_payloads_as_keys_are_plain_401(client, payload):
    response = await client.post(
        "/v1/chat/completions", json=chat("mini"), headers={"x-api-key": payload.replace("\r\n", "")}
    )
    assert response.status_code == 401


@pytest.mark.parametrize("model", ["mini", "gpt-4o-mini", "GPT-4o-Mini", " mini ", "claude-haiku"])
async def test_allowed_models_in_any_spelling(client, model):
    response = await client.post("/v1/chat/completions", json=chat(model), headers=bearer(KEYS["alice"]))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("model", ["gpt-4o", "GPT-4O", "embed-small"])
async def test_other_models_are_403(client, model):
    response = await client.post("/v1/chat/completions", json=chat(model), headers=bearer(KEYS["alice"]))
    error = assert_error_shape(response, 403, "model_not_allowed")
    assert KEYS["alice"] not in response.text and "gpt-4o-mini" not in error["message"]


async def test_unknown_model_is_404_for_an_authenticated_caller(client):
    response = await client.post("/v1/chat/completions", json=chat("gpt-9"), headers=bearer(KEYS["alice"]))
    assert_error_shape(response, 404, "model_not_found")


async def test_endpoints_are_granted_by_role(client):
    response = await client.post(
        "/v1/embeddings", json={"model": "embed-small", "input": "x"}, headers=bearer(KEYS["alice"])
    )
    assert_error_shape(response, 403, "endpoint_not_allowed")
    response = await client.post(
        "/v1/embeddings", json={"model": "embed-small", "input": "x"}, headers=bearer(KEYS["bob"])
    )
    assert response.status_code == 200


async def test_models_list_shows_only_allowed(client):
    ids = {m["id"] for m in (await client.get("/v1/models", headers=bearer(KEYS["alice"]))).json()["data"]}
    assert ids == {"gpt-4o-mini", "claude-haiku"}
    ids = {m["id"] for m in (await client.get("/v1/models", headers=bearer(KEYS["root"]))).json()["data"]}
    assert ids == {"gpt-4o-mini", "claude-haiku", "gpt-4o", "embed-small"}


async def test_a_key_with_no_role_gets_nothing(client):
    response = await client.post("/v1/chat/completions", json=chat("mini"), headers=bearer(KEYS["nobody"]))
    assert_error_shape(response, 403)


async def test_admin_api_needs_admin(client):
    response = await client.get("/admin/config", headers=bearer(KEYS["alice"]))
    assert_error_shape(response, 403, "endpoint_not_allowed")
    response = await client.get("/admin/config", headers=bearer(KEYS["root"]))
    assert response.status_code == 200
    body = response.text
    assert "sha256:" not in body  # digests are redacted too
    assert json.loads(body)["config"]["auth"]["api_keys"][0]["key_sha256"] == "***"


async def test_admin_api_without_auth_is_refused(asgi_client):
    client = asgi_client(
        {"models": [{"name": "m", "deployments": [{"id": "m", "provider": "mock", "model": "m"}]}]}
    )
    assert_error_shape(await client.get("/admin/config"), 403, "endpoint_not_allowed")


async def test_audit_log_has_one_line_per_decision_and_no_secrets(client, tmp_path):
    await client.post("/v1/chat/completions", json=chat("mini"), headers=bearer(KEYS["alice"]))
    await client.post("/v1/chat/completions", json=chat("gpt-4o"), headers=bearer(KEYS["alice"]))
    await client.post("/v1/chat/completions", json=chat("mini"), headers=bearer("sk-wrong-key-123"))
    await client.get("/admin/config", headers=bearer(KEYS["root"]))
    text = (tmp_path / "audit.jsonl").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["outcome"] for line in lines[:3]] == ["allow", "deny", "deny"]
    assert lines[0]["principal"] == "alice" and lines[0]["tenant"] == "team-a"
    assert lines[0]["model"] == "gpt-4o-mini"
    assert lines[1]["reason"] == "model_not_allowed"
    assert lines[2]["reason"] == "invalid_api_key" and lines[2]["principal"] is None
    assert any(line.get("admin_action") == "config" for line in lines)
    for secret in [*KEYS.values(), "sk-wrong-key-123", "sha256:"]:
        assert secret not in text


async def test_unwritable_audit_log_refuses_admin_actions(asgi_client, tmp_path):
    (tmp_path / "dir").mkdir()
    client = asgi_client(auth_config(audit_log={"path": str(tmp_path / "dir")}))  # a directory
    response = await client.get("/admin/config", headers=bearer(KEYS["root"]))
    assert_error_shape(response, 503, "audit_unavailable")
    # the data plane keeps serving when the audit sink fails
    response = await client.post("/v1/chat/completions", json=chat("mini"), headers=bearer(KEYS["alice"]))
    assert response.status_code == 200


async def test_principal_is_visible_to_a_users_endpoint():
    import httpx2
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from asgi_llm import AuthMiddleware

    async def mine(request: Request) -> JSONResponse:
        principal = request.state.llm.principal
        return JSONResponse({"id": principal.id, "tenant": principal.tenant})

    async def public(request: Request) -> JSONResponse:
        return JSONResponse({"public": True})

    config = Config.from_dict(auth_config())
    app = Starlette(
        routes=[Route("/v1/chat/completions", mine, methods=["POST"]), Route("/public", public)],
        middleware=[Middleware(AuthMiddleware, config=config)],
    )
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.post("/v1/chat/completions", json=chat("mini"), headers=bearer(KEYS["alice"]))
        assert response.json() == {"id": "alice", "tenant": "team-a"}
        assert (await c.post("/v1/chat/completions", json=chat("mini"))).status_code == 401
        assert (await c.get("/public")).json() == {"public": True}  # not an LLM path: untouched


async def test_custom_authenticate_hook():
    import httpx2

    from asgi_llm import AuthMiddleware, Principal, ProviderApp, RouterMiddleware

    async def from_session(scope):
        for name, value in scope["headers"]:
            if name == b"x-session" and value == b"valid":
                return Principal(id="session-user", tenant="t", models=("gpt-4o-mini",), endpoints=("chat",))
        return None

    config = Config.from_dict(auth_config())
    app = AuthMiddleware(
        RouterMiddleware(ProviderApp(config=config), config=config), config=config, authenticate=from_session
    )
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as c:
        ok = await c.post("/v1/chat/completions", json=chat("mini"), headers={"x-session": "valid"})
        assert ok.status_code == 200
        assert (
            await c.post("/v1/chat/completions", json=chat("gpt-4o"), headers={"x-session": "valid"})
        ).status_code == 403
        assert (await c.post("/v1/chat/completions", json=chat("mini"))).status_code == 401


async def test_a_guessing_address_gets_429_and_no_more_store_lookups(asgi_client, monkeypatch):
    """THREATS K8: past auth.failure_limit failures in the window, an address gets 429 with
    retry-after, its guesses no longer reach the key store, a config key still works from it,
    other addresses are untouched, and the window ends."""
    from asgi_llm import AuthMiddleware, build_app
    from asgi_llm.auth.keys import RedisKeyStore

    lookups = []

    async def lookup(self, digest, config_record):
        lookups.append(digest)
        return config_record

    monkeypatch.setattr(RedisKeyStore, "lookup", lookup)  # counts what would reach Redis
    app = build_app(
        Config.from_dict(
            auth_config(failure_limit=5, failure_window_s=60, key_store={"url": "redis://127.0.0.1:1/0"})
        )
    )
    layer = app
    while not isinstance(layer, AuthMiddleware):
        layer = layer.app
    clock = [1000.0]
    layer._clock = lambda: clock[0]
    guesser, other = asgi_client(app=app), asgi_client(app=app, peer=("10.9.9.9", 1234))

    async def call(client, key):
        return await client.post("/v1/chat/completions", json=chat("mini"), headers=bearer(key))

    statuses = [(await call(guesser, f"sk-guess-{i}")).status_code for i in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    assert len(lookups) == 5  # the store was asked for the first five only
    refused = await call(guesser, "sk-guess-9")
    assert_error_shape(refused, 429, "too_many_auth_failures")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert (await call(guesser, KEYS["alice"])).status_code == 200  # a config key still works
    assert (await call(other, "sk-guess-x")).status_code == 401
    clock[0] += 61
    assert (await call(guesser, "sk-guess-10")).status_code == 401
