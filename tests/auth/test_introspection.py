"""OAuth2 token introspection (RFC 7662) against a real fake IdP."""

from __future__ import annotations

import pytest

from tests.auth.conftest import auth_config, bearer
from tests.conftest import assert_error_shape

CHAT = {"model": "mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def client(asgi_client, idp):
    return asgi_client(auth_config(idp))


async def call(client, token):
    return await client.post("/v1/chat/completions", json=CHAT, headers=bearer(token))


async def test_active_token_is_allowed_and_cached(client, idp):
    idp.active_tokens["opaque-token-1"] = {"sub": "svc", "roles": "user", "org": "team-a"}
    assert (await call(client, "opaque-token-1")).status_code == 200
    assert (await call(client, "opaque-token-1")).status_code == 200
    assert idp.introspections == 1


async def test_inactive_token_is_401(client, idp):
    assert_error_shape(await call(client, "opaque-unknown"), 401, "invalid_api_key")


async def test_idp_down_is_503(client, idp):
    idp.mode = "down"
    assert_error_shape(await call(client, "opaque-token-2"), 503, "dependency_unavailable")
