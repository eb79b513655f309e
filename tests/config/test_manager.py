"""ConfigManager: whole-snapshot validation, keep-last-good, outcomes, in-flight snapshots."""

from __future__ import annotations

import asyncio
import json

import pytest

from asgi_llm import Config, ConfigManager, build_app
from asgi_llm.config.manager import ReloadResult
from asgi_llm.errors import ConfigError
from tests.conftest import mock_model
from tests.waiting import await_until


def write(path, models=("m1",), **sections):
    path.write_text(json.dumps({"models": [mock_model(m) for m in models], **sections}))


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "proxy.json"
    write(path)
    return path


def test_reload_swaps_in_a_valid_file_and_tells_listeners_and_observers(config_file):
    manager = ConfigManager(Config.from_file(config_file))
    swaps, outcomes = [], []
    manager.listeners.append(lambda old, new: swaps.append((old, new)))
    manager.reload_observers.append(outcomes.append)
    old = manager.current
    write(config_file, ("m1", "m2"))
    result = manager.reload()
    assert result.ok and result.origin == "admin" and result.source == str(config_file)
    assert [m.name for m in manager.current.models] == ["m1", "m2"]
    assert swaps == [(old, manager.current)] and outcomes == [result]
    assert manager.reloads == {"ok": 1, "failed": 0} and manager.last_error is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{ not json", "cannot parse"),
        (
            '{"models": [{"name": "m", "deployments": [{"id": "d", "provider": "nope", "model": "m"}]}]}',
            "models[0].deployments[0].provider",
        ),
        ('{"models": [], "bogus": 1}', "bogus"),
        ("", "empty"),
        ("   \n", "empty"),
    ],
)
def test_a_bad_file_keeps_the_old_config_and_says_where(config_file, content, message, no_secrets_in_logs):
    manager = ConfigManager(Config.from_file(config_file))
    old = manager.current
    config_file.write_text(content)
    result = manager.reload(origin="file")
    assert not result.ok and manager.current is old
    assert message in result.error and str(config_file) in result.error
    assert manager.last_reload is result and manager.last_error is result
    assert manager.reloads == {"ok": 0, "failed": 1}
    logged = [line for line in no_secrets_in_logs.lines if "rejected" in line]
    assert logged and str(config_file) in logged[0] and message in logged[0]


def test_the_last_error_stays_visible_after_a_good_reload(config_file):
    manager = ConfigManager(Config.from_file(config_file))
    config_file.write_text("{")
    failed = manager.reload()
    write(config_file, ("m2",))
    assert manager.reload().ok
    assert manager.last_error is failed and manager.last_reload.ok


def test_a_config_not_from_a_file_cannot_reload():
    manager = ConfigManager(Config.from_dict({"models": [mock_model()]}))
    result = manager.reload()
    assert not result.ok and "not loaded from a file" in result.error


def test_validators_and_an_unbuildable_catalog_reject_before_the_swap(config_file):
    manager = ConfigManager(Config.from_file(config_file))

    def no_m2(config: Config) -> None:
        if any(m.name == "m2" for m in config.models):
            raise ConfigError("m2 is not allowed here", source=config.source, field="models")

    manager.validators.append(no_m2)
    write(config_file, ("m1", "m2"))
    result = manager.reload()
    assert not result.ok and "m2 is not allowed" in result.error
    assert [m.name for m in manager.current.models] == ["m1"]


def test_a_failing_listener_neither_undoes_nor_stops_the_swap(config_file):
    manager = ConfigManager(Config.from_file(config_file))
    seen = []

    def broken(old, new):
        raise RuntimeError("listener bug")

    manager.listeners += [broken, lambda old, new: seen.append(new)]
    write(config_file, ("m2",))
    assert manager.reload().ok
    assert seen == [manager.current] and manager.current.models[0].name == "m2"


def test_a_setting_read_at_startup_says_it_needs_a_restart(config_file, no_secrets_in_logs):
    write(config_file, cache={"semantic": {"enabled": False}})
    manager = ConfigManager(Config.from_file(config_file))
    write(config_file, cache={"semantic": {"enabled": True}})
    assert manager.reload().ok
    assert any(
        "cache.semantic.enabled changed; it takes effect after a restart" in line
        for line in no_secrets_in_logs.lines
    )


def test_secrets_from_the_environment_are_not_logged_when_a_reload_fails(
    config_file, monkeypatch, no_secrets_in_logs
):
    monkeypatch.setenv("UPSTREAM_KEY", "sk-live-secret-value-123456")
    config_file.write_text(
        json.dumps(
            {
                "models": [
                    {
                        "name": "m",
                        "deployments": [
                            {
                                "id": "d",
                                "provider": "openai-compatible",
                                "model": "m",
                                "api_key": "${UPSTREAM_KEY}",
                                "base_url": "http://169.254.169.254/v1",
                            }
                        ],
                    }
                ]
            }
        )
    )
    manager = ConfigManager(Config.from_dict({"models": [mock_model()]}, source=str(config_file)))
    result = manager.reload()
    assert not result.ok and "base_url" in result.error
    assert "sk-live" not in result.error  # the autouse fixture scans every log line too


async def test_reload_async_validates_off_the_loop(config_file):
    manager = ConfigManager(Config.from_file(config_file))
    write(config_file, ("m9",))
    result = await manager.reload_async(origin="redis")
    assert isinstance(result, ReloadResult) and result.ok and result.origin == "redis"
    assert manager.current.models[0].name == "m9"


async def test_in_flight_requests_finish_on_their_snapshot(config_file, asgi_client):
    config_file.write_text(json.dumps({"models": [mock_model("slow", latency_ms=300)]}))
    app = build_app(Config.from_file(config_file))
    reads = []

    async def reading(scope, receive, send):  # the stack takes its snapshot before it reads
        async def counted():
            reads.append(scope["type"])
            return await receive()

        await app(scope, counted, send)

    client = asgi_client(app=reading)
    manager = app.configs
    body = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}
    slow = asyncio.ensure_future(client.post("/v1/chat/completions", json=body))
    await await_until(lambda: "http" in reads, message="the slow request to be in the stack")
    write(config_file, ("m2",))  # the slow model is gone from the new snapshot
    assert manager.reload().ok
    response = await slow
    assert response.status_code == 200, response.text
    assert (await client.post("/v1/chat/completions", json=body)).status_code == 404
    assert (await client.post("/v1/chat/completions", json={**body, "model": "m2"})).status_code == 200


async def test_the_admin_view_redacts_secrets_and_shows_the_last_error(config_file, asgi_client):
    from asgi_llm.auth.keys import hash_key

    admin = {
        "api_keys": [{"id": "root", "key_sha256": hash_key("sk-root-0123456789"), "roles": ["admin"]}],
        "roles": {"admin": {"models": ["*"], "endpoints": ["*"], "admin": True}},
    }
    model = {
        "name": "up",
        "deployments": [
            {
                "id": "u",
                "provider": "openai-compatible",
                "model": "x",
                "base_url": "http://127.0.0.1:9/v1",
                "api_key": "sk-provider-secret-xyz",
            }
        ],
    }
    config_file.write_text(json.dumps({"models": [model], "auth": admin}))
    client = asgi_client(app=build_app(Config.from_file(config_file)))
    headers = {"authorization": "Bearer sk-root-0123456789"}
    config_file.write_text(
        json.dumps(
            {
                "models": [{**model, "deployments": [{**model["deployments"][0], "timeout_s": -1}]}],
                "auth": admin,
            }
        )
    )
    response = await client.post("/admin/config/reload", headers=headers)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_config"
    view = (await client.get("/admin/config", headers=headers)).json()
    text = json.dumps(view)
    assert "sk-provider-secret" not in text and "sha256:" not in text
    assert view["config"]["models"][0]["deployments"][0]["api_key"] == "***"
    assert view["last_reload"]["ok"] is False
    assert "models[0].deployments[0].timeout_s" in view["last_reload"]["error"]


def test_a_reload_logs_the_configs_warnings(config_file, no_secrets_in_logs):
    manager = ConfigManager(Config.from_file(config_file))
    write(config_file, auth={"roles": {"user": {"models": ["m9*"], "endpoints": ["chat"]}}})
    assert manager.reload().ok
    assert any(
        f"config {config_file}: auth.roles.user.models[0]: 'm9*' matches no model name or alias" in line
        for line in no_secrets_in_logs.lines
    )
