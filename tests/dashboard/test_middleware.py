"""The dashboard over HTTP, in process: sign-in, cookie flags, CSRF, CSP, session expiry."""

from __future__ import annotations

import json
import logging

import pytest

from asgi_llm import Config, build_app
from asgi_llm.dashboard.wire import CSP
from tests.dashboard.conftest import ROOT_KEY, TEAM_ADMIN_KEY, USER_KEY, document

UI = "/admin/ui"


@pytest.fixture
def stack():
    return build_app(Config.from_dict(document()))


async def signed_in(client, key: str = ROOT_KEY):
    response = await client.post(f"{UI}/signin", data={"credential": key})
    assert response.status_code == 303, response.text
    return response


def cookie_lines(response) -> dict[str, str]:
    return {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}


async def test_off_unless_admin_ui_is_true(asgi_client):
    for config in (document(ui=False), {k: v for k, v in document().items() if k != "admin"}):
        client = asgi_client(config)
        response = await client.get(f"{UI}/", headers={"authorization": f"Bearer {ROOT_KEY}"})
        assert response.status_code == 404
        assert (await client.get(f"{UI}/signin")).status_code == 404


async def test_every_answer_carries_the_csp(asgi_client, stack):
    client = asgi_client(app=stack)
    for method, path in [
        ("GET", UI),
        ("GET", f"{UI}/"),
        ("GET", f"{UI}/signin"),
        ("GET", f"{UI}/nowhere"),
        ("GET", f"{UI}/static/app.js"),
        ("GET", f"{UI}/static/missing.js"),
        ("GET", f"{UI}/api/config"),
        ("POST", f"{UI}/signin"),
        ("DELETE", f"{UI}/signin"),
    ]:
        response = await client.request(method, path)
        assert response.headers["content-security-policy"] == CSP, (method, path)
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP
    assert "default-src 'self'" in CSP and "frame-ancestors 'none'" in CSP


async def test_without_a_session_no_page_and_no_data(asgi_client, stack):
    client = asgi_client(app=stack)
    response = await client.get(f"{UI}/")
    assert response.status_code == 303 and response.headers["location"] == f"{UI}/signin"
    page = await client.get(f"{UI}/signin")
    assert page.status_code == 200 and 'name="credential"' in page.text and "<script" not in page.text
    for path in ("usage", "config", "deployments", "keys"):
        denied = await client.get(f"{UI}/api/{path}")
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"


async def test_sign_in_refuses_a_wrong_key_and_a_non_admin(asgi_client, stack, caplog):
    client = asgi_client(app=stack)
    for key in ("sk-nobody-0123456789", USER_KEY, ""):
        response = await client.post(f"{UI}/signin", data={"credential": key})
        assert response.status_code in (401, 403) or response.status_code == 401
        assert "Sign-in failed" in response.text and "set-cookie" not in response.headers
        assert key not in response.text or not key


async def test_sign_in_sets_strict_httponly_cookies_for_the_ui_path_only(asgi_client, stack):
    client = asgi_client(app=stack)
    response = await signed_in(client)
    assert response.headers["location"] == f"{UI}/"
    cookies = cookie_lines(response)
    session, csrf = cookies["asgi_llm_ui"], cookies["asgi_llm_ui_csrf"]
    for line in (session, csrf):
        assert f"Path={UI}" in line and "SameSite=Strict" in line and "Secure" not in line
    assert "HttpOnly" in session and "HttpOnly" not in csrf  # the page's script echoes the csrf one
    assert ROOT_KEY not in session
    page = await client.get(f"{UI}/")
    assert page.status_code == 200 and 'src="static/app.js"' in page.text
    who = (await client.get(f"{UI}/session")).json()
    assert who["principal"] == "root" and who["tenant"] is None


async def test_cookies_are_secure_over_https(asgi_client, stack):
    client = asgi_client(app=stack)
    client.base_url = "https://proxy.test"
    response = await signed_in(client)
    assert all("; Secure" in line for line in cookie_lines(response).values())


async def test_a_bearer_credential_opens_the_page(asgi_client, stack):
    client = asgi_client(app=stack)
    response = await client.get(f"{UI}/", headers={"authorization": f"Bearer {ROOT_KEY}"})
    assert response.status_code == 200 and "asgi_llm_ui" in cookie_lines(response)
    refused = await client.get(f"{UI}/", headers={"authorization": f"Bearer {USER_KEY}"})
    assert refused.status_code == 403


async def test_the_session_reads_the_admin_api_and_changes_need_the_csrf_token(asgi_client, stack, caplog):
    client = asgi_client(app=stack)
    await signed_in(client)
    config = await client.get(f"{UI}/api/config")
    assert config.status_code == 200 and config.json()["config"]["auth"]["api_keys"][0]["key_sha256"] == "***"
    token = client.cookies["asgi_llm_ui_csrf"]
    missing = await client.post(f"{UI}/api/config/reload")
    wrong = await client.post(f"{UI}/api/config/reload", headers={"x-csrf-token": token[:-2] + "xx"})
    for response in (missing, wrong):
        assert response.status_code == 403 and response.json()["error"]["code"] == "csrf_failed"
    with caplog.at_level(logging.INFO, logger="asgi_llm.audit"):
        done = await client.post(f"{UI}/api/config/reload", headers={"x-csrf-token": token})
    assert done.status_code in (200, 422), done.text  # built from a dict: nothing to reload from
    audited = [r.getMessage() for r in caplog.records if '"admin_action":"config.reload"' in r.getMessage()]
    assert audited and all('"principal":"root"' in line for line in audited)


async def test_the_session_cookie_opens_nothing_but_the_dashboard(asgi_client, stack):
    client = asgi_client(app=stack)
    await signed_in(client)
    cookie = f"asgi_llm_ui={client.cookies['asgi_llm_ui']}"
    chat = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
    for method, path, body in [("POST", "/v1/chat/completions", chat), ("GET", "/admin/config", None)]:
        response = await client.request(method, path, json=body, headers={"cookie": cookie})
        assert response.status_code == 401, (path, response.text)
    outside = await client.get(f"{UI}/api/../../v1/models", headers={"cookie": cookie})
    assert outside.status_code in (404, 401)
    assert (await client.get(f"{UI}/api/v1/models")).status_code == 404


async def test_a_session_expires_and_a_tampered_one_is_refused(asgi_client, stack):
    client = asgi_client(app=stack)
    await signed_in(client)
    assert (await client.get(f"{UI}/api/config")).status_code == 200
    token = client.cookies["asgi_llm_ui"]
    body, _, mac = token.partition(".")
    tampered = {"cookie": f"asgi_llm_ui={body[:-2]}AA.{mac}"}
    client.cookies.clear()
    assert (await client.get(f"{UI}/api/config", headers=tampered)).status_code == 401
    client.cookies.set("asgi_llm_ui", token)
    real_clock = stack.dashboard._clock
    stack.dashboard._clock = lambda: real_clock() + 3601
    expired = await client.get(f"{UI}/api/config")
    assert expired.status_code == 401
    assert (await client.get(f"{UI}/")).headers["location"] == f"{UI}/signin"


async def test_sign_out_needs_csrf_and_clears_the_cookies(asgi_client, stack):
    client = asgi_client(app=stack)
    await signed_in(client)
    assert (await client.post(f"{UI}/signout")).status_code == 403
    response = await client.post(
        f"{UI}/signout", headers={"x-csrf-token": client.cookies["asgi_llm_ui_csrf"]}
    )
    assert response.status_code == 200
    assert all("Max-Age=0" in line for line in cookie_lines(response).values())


async def test_a_cross_site_sign_in_is_refused(asgi_client, stack):
    client = asgi_client(app=stack)
    response = await client.post(
        f"{UI}/signin", data={"credential": ROOT_KEY}, headers={"sec-fetch-site": "cross-site"}
    )
    assert response.status_code == 403 and "set-cookie" not in response.headers


async def test_a_tenant_admin_session_is_its_tenant(asgi_client, stack):
    client = asgi_client(app=stack)
    await signed_in(client, TEAM_ADMIN_KEY)
    who = (await client.get(f"{UI}/session")).json()
    assert who == {**who, "principal": "team-a-admin", "tenant": "a"}


async def test_deployments_shows_live_state(asgi_client, stack):
    client = asgi_client(app=stack)
    await signed_in(client)
    stack.services.cooldowns.cool_for("m1-d", 30)
    data = (await client.get(f"{UI}/api/deployments")).json()
    (row,) = data["data"]
    assert row["id"] == "m1-d" and row["model"] == "m1" and row["cooling"] and 0 < row["cooldown_s"] <= 30
    assert data["in_flight"] == 0


async def test_the_path_is_configurable_and_follows_the_path_prefix(asgi_client):
    config = document(ui={"ui": True, "ui_path": "/console"}, server={"path_prefix": "/llm"})
    client = asgi_client(config)
    assert (await client.get(f"{UI}/signin")).status_code == 404
    response = await client.post("/llm/console/signin", data={"credential": ROOT_KEY})
    assert response.status_code == 303 and "Path=/llm/console" in response.headers["set-cookie"]
    assert (await client.get("/llm/console/api/config")).status_code == 200


def test_a_ui_path_over_a_proxy_route_is_refused():
    from asgi_llm import ConfigError

    for path in ("/admin", "/v1", "/healthz"):
        with pytest.raises(ConfigError, match="would hide routes"):
            Config.from_dict(document(ui={"ui": True, "ui_path": path}))
    with pytest.raises(ConfigError, match="ui_secret"):
        Config.from_dict(document(ui={"ui": True, "ui_secret": "short"}))


async def test_mounted_in_a_users_app_the_cookie_names_the_mount_path(asgi_client, stack):
    from starlette.applications import Starlette
    from starlette.routing import Mount

    client = asgi_client(app=Starlette(routes=[Mount("/gateway", app=stack)]))
    response = await client.post(f"/gateway{UI}/signin", data={"credential": ROOT_KEY})
    assert response.status_code == 303 and response.headers["location"] == f"/gateway{UI}/"
    assert all(f"Path=/gateway{UI};" in line for line in cookie_lines(response).values())
    page = await client.get(f"/gateway{UI}/")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    assert (await client.get(f"/gateway{UI}/api/deployments")).json()["data"][0]["id"] == "m1-d"


@pytest.mark.parametrize("order", ["outside auth", "inside admin"])
async def test_a_misplaced_dashboard_fails_at_startup(order):
    from asgi_llm import AuthMiddleware, ProviderApp
    from asgi_llm.admin.middleware import AdminMiddleware
    from asgi_llm.dashboard import DashboardMiddleware
    from asgi_llm.lifespan import lifespan

    config = Config.from_dict(document())
    provider = ProviderApp(config=config)
    if order == "outside auth":
        app = DashboardMiddleware(
            AuthMiddleware(AdminMiddleware(provider, config=config), config=config), config=config
        )
    else:
        app = AuthMiddleware(
            AdminMiddleware(DashboardMiddleware(provider, config=config), config=config), config=config
        )
    with pytest.raises(RuntimeError, match="DashboardMiddleware"):
        async with lifespan(app):
            pass


async def test_sign_ins_are_audited_without_the_credential(asgi_client, tmp_path):
    config = document()
    config["auth"]["audit_log"] = {"path": str(tmp_path / "audit.jsonl")}
    client = asgi_client(config)
    await client.post(f"{UI}/signin", data={"credential": USER_KEY})
    await signed_in(client)
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    signins = [line for line in lines if line["endpoint"] == "admin.ui.signin"]
    assert [(s["principal"], s["outcome"], s["reason"]) for s in signins] == [
        ("user", "deny", "endpoint_not_allowed"),
        ("root", "allow", None),
    ]
    text = (tmp_path / "audit.jsonl").read_text()
    assert ROOT_KEY not in text and USER_KEY not in text


async def test_revoking_the_key_a_session_was_opened_with_ends_the_session(asgi_client, redis_available):
    import uuid

    config = document()
    config["auth"]["key_store"] = {
        "url": redis_available + "/5",
        "prefix": f"dash-{uuid.uuid4().hex[:8]}",
        "cache_ttl_s": 0,
    }
    client = asgi_client(config)
    root = {"authorization": f"Bearer {ROOT_KEY}"}
    minted = await client.post("/admin/keys", json={"id": "ops", "roles": ["admin"]}, headers=root)
    assert minted.status_code == 201, minted.text
    await signed_in(client, minted.json()["key"])
    assert (await client.get(f"{UI}/api/config")).status_code == 200
    assert (await client.post("/admin/keys/revoke", json={"id": "ops"}, headers=root)).status_code == 200
    assert (await client.get(f"{UI}/api/config")).status_code == 401
    assert (await client.get(f"{UI}/")).headers["location"] == f"{UI}/signin"
    # a config key revoked through the store ends its sessions too
    await signed_in(client, ROOT_KEY)
    assert (await client.get(f"{UI}/api/deployments")).status_code == 200
    await client.post("/admin/keys/revoke", json={"id": "root"}, headers=root)
    assert (await client.get(f"{UI}/api/deployments")).status_code == 401


def test_check_config_warns_when_nobody_could_sign_in():
    from asgi_llm.config.checks import config_warnings

    assert not [w for w in config_warnings(Config.from_dict(document())) if w.startswith("admin.ui")]
    no_admin = document()
    no_admin["auth"]["roles"]["admin"]["admin"] = False
    assert "admin.ui: no role has admin: true" in "\n".join(config_warnings(Config.from_dict(no_admin)))
    no_auth = {k: v for k, v in document().items() if k != "auth"}
    assert "admin.ui: there is no auth: section" in "\n".join(config_warnings(Config.from_dict(no_auth)))
