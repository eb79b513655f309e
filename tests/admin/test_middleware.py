"""AdminMiddleware: every error is the contract's error object with a 4xx status."""

from __future__ import annotations

import json

import pytest

from asgi_llm import AuthMiddleware, Config, ConfigManager, ProviderApp, build_app
from asgi_llm.admin.middleware import AdminMiddleware
from asgi_llm.auth.keys import hash_key
from tests.conftest import assert_error_shape, mock_model

ROOT_KEY = "sk-root-0123456789"
USER_KEY = "sk-user-0123456789"
ROOT = {"authorization": f"Bearer {ROOT_KEY}"}
CHAT = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}


def document(*models: str, **extra) -> dict:
    auth = {
        "api_keys": [
            {"id": "root", "key_sha256": hash_key(ROOT_KEY), "roles": ["admin"]},
            {"id": "user", "key_sha256": hash_key(USER_KEY), "roles": ["user"]},
        ],
        "roles": {
            "admin": {"models": ["*"], "endpoints": ["*"], "admin": True},
            "user": {"models": ["*"], "endpoints": ["chat"]},
        },
    }
    return {"models": [mock_model(m) for m in models], "auth": auth, **extra}


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps(document("m1")))
    return path


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"models": [', "cannot parse JSON"),
        (json.dumps(document("m1", bogus=1)), "bogus"),
        ("", "empty"),
    ],
)
async def test_a_bad_reload_is_a_422_invalid_config_and_the_old_config_stays(
    config_file, asgi_client, content, says
):
    client = asgi_client(app=build_app(Config.from_file(config_file)))
    config_file.write_text(content)
    response = await client.post("/admin/config/reload", headers=ROOT)
    assert response.status_code == 422, response.text
    body = response.json()
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_config"
    assert says in error["message"] and str(config_file) in error["message"]
    assert body["reloaded"] is False and body["source"] == str(config_file)
    assert (await client.post("/v1/chat/completions", json=CHAT, headers=ROOT)).status_code == 200


async def test_a_good_reload_still_answers_200(config_file, asgi_client):
    client = asgi_client(app=build_app(Config.from_file(config_file)))
    config_file.write_text(json.dumps(document("m1", "m2")))
    response = await client.post("/admin/config/reload", headers=ROOT)
    assert response.status_code == 200 and response.json() == {"reloaded": True, "source": str(config_file)}


async def test_reloading_a_config_not_from_a_file_is_an_error_object(asgi_client):
    client = asgi_client(document("m1"))
    response = await client.post("/admin/config/reload", headers=ROOT)
    error = response.json()["error"]
    assert response.status_code == 422 and error["code"] == "invalid_config"
    assert "not loaded from a file" in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("POST", "/admin/config/reload", {}, 401, "invalid_api_key"),
        ("GET", "/admin/config", {"authorization": f"Bearer {USER_KEY}"}, 403, "endpoint_not_allowed"),
        ("GET", "/admin/config/reload", ROOT, 405, None),
        ("POST", "/admin/keys", ROOT, 404, "key_store_not_configured"),
        ("POST", "/admin/keys/revoke", ROOT, 400, None),
    ],
)
async def test_admin_errors_have_the_error_shape_and_a_4xx_type(
    asgi_client, method, path, headers, status, code
):
    client = asgi_client(document("m1"))
    response = await client.request(method, path, headers=headers, json={})
    error = assert_error_shape(response, status, code)
    assert error["type"] in ("invalid_request_error", "authentication_error", "permission_error"), error


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [("DELETE", "/admin/cache", "cache_not_configured"), ("GET", "/admin/usage", "limits_not_configured")],
)
async def test_a_missing_layer_is_a_404_error_object(asgi_client, method, path, code):
    manager = ConfigManager(Config.from_dict(document("m1")))
    app = AuthMiddleware(AdminMiddleware(ProviderApp(config=manager), config=manager), config=manager)
    client = asgi_client(app=app)
    error = assert_error_shape(await client.request(method, path, headers=ROOT), 404, code)
    assert error["type"] == "invalid_request_error"
