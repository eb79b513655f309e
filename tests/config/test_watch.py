"""Live config: the file watcher (edits, renames, symlink swaps, half-written files), the
Redis reload channel, and both on real `asgi-llm serve` processes."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid

import httpx2
import pytest

from asgi_llm import Config, ConfigManager, lifespan
from asgi_llm.auth.keys import hash_key
from asgi_llm.config.watch import FileWatcher, LiveConfig, RedisReloadChannel
from tests.conftest import mock_model
from tests.harness import ProxyServer
from tests.waiting import await_until

ADMIN_KEY = "sk-root-0123456789"
ADMIN = {
    "api_keys": [{"id": "root", "key_sha256": hash_key(ADMIN_KEY), "roles": ["admin"]}],
    "roles": {"admin": {"models": ["*"], "endpoints": ["*"], "admin": True}},
}
HEADERS = {"authorization": f"Bearer {ADMIN_KEY}"}


def doc(*models: str, **sections) -> str:
    return json.dumps({"models": [mock_model(m) for m in models], **sections})


def names(manager: ConfigManager) -> list[str]:
    return [m.name for m in manager.current.models]


@pytest.fixture
async def watched(tmp_path):
    path = tmp_path / "proxy.json"
    path.write_text(doc("m1"))
    manager = ConfigManager(Config.from_file(path))
    watcher = FileWatcher(manager)
    await watcher.prime()
    return path, manager, watcher


async def test_an_edit_is_loaded_once_it_holds_still_for_one_poll(watched):
    path, manager, watcher = watched
    assert await watcher.poll() is None  # unchanged
    path.write_text(doc("m1", "m2"))
    assert await watcher.poll() is None and names(manager) == ["m1"]  # changed: wait one poll
    result = await watcher.poll()
    assert result.ok and result.origin == "file" and names(manager) == ["m1", "m2"]
    assert await watcher.poll() is None and manager.reloads["ok"] == 1  # loaded once


async def test_a_half_written_file_is_never_loaded(watched):
    path, manager, watcher = watched
    full = doc("m1", "m2")
    with open(path, "w") as handle:  # truncate, then write in two pieces with polls between
        handle.write(full[: len(full) // 2])
        handle.flush()
        assert await watcher.poll() is None
        handle.write(full[len(full) // 2 :])
        handle.flush()
        assert await watcher.poll() is None  # changed again: still waiting
    result = await watcher.poll()
    assert result.ok and names(manager) == ["m1", "m2"]
    assert manager.reloads["failed"] == 0


async def test_truncated_and_paused_keeps_the_old_config_until_the_write_completes(watched):
    path, manager, watcher = watched
    path.write_text("")  # an editor truncated it and stalled
    assert await watcher.poll() is None
    result = await watcher.poll()
    assert not result.ok and "empty" in result.error and names(manager) == ["m1"]
    path.write_text(doc("m3"))
    await watcher.poll()
    assert (await watcher.poll()).ok and names(manager) == ["m3"]


async def test_invalid_content_is_rejected_once_and_not_retried_until_it_changes(watched):
    path, manager, watcher = watched
    path.write_text('{"models": [{"name": "x", "deployments": []}]}')
    await watcher.poll()
    result = await watcher.poll()
    assert not result.ok and "models[0].deployments" in result.error and names(manager) == ["m1"]
    for _ in range(3):
        assert await watcher.poll() is None
    assert manager.reloads == {"ok": 0, "failed": 1}
    path.write_text(doc("m1", "m4"))
    await watcher.poll()
    assert (await watcher.poll()).ok and names(manager) == ["m1", "m4"]


async def test_an_atomic_rename_and_a_moment_without_the_file(watched):
    path, manager, watcher = watched
    path.unlink()
    assert await watcher.poll() is None  # missing for a moment: nothing happens
    tmp = path.with_suffix(".tmp")
    tmp.write_text(doc("m5"))
    os.replace(tmp, path)
    await watcher.poll()
    assert (await watcher.poll()).ok and names(manager) == ["m5"]


async def test_a_kubernetes_configmap_symlink_swap(tmp_path):
    """/etc/proxy/config.json -> ..data/config.json, ..data -> ..2024_v1; the update writes
    ..2024_v2 and swaps the ..data link atomically."""
    mount = tmp_path / "mount"
    (mount / "..v1").mkdir(parents=True)
    (mount / "..v1" / "config.json").write_text(doc("m1"))
    os.symlink("..v1", mount / "..data")
    os.symlink("..data/config.json", mount / "config.json")
    manager = ConfigManager(Config.from_file(mount / "config.json"))
    watcher = FileWatcher(manager)
    await watcher.prime()
    (mount / "..v2").mkdir()
    (mount / "..v2" / "config.json").write_text(doc("m1", "m2"))
    os.symlink("..v2", mount / "..data_tmp")
    os.replace(mount / "..data_tmp", mount / "..data")
    await watcher.poll()
    assert (await watcher.poll()).ok and names(manager) == ["m1", "m2"]
    assert manager.current.source == str(mount / "config.json")


async def test_live_config_watches_while_the_app_runs(tmp_path):
    path = tmp_path / "proxy.json"
    path.write_text(doc("m1", reload={"poll_interval_s": 0.05}))
    manager = ConfigManager(Config.from_file(path))

    async def inner(scope, receive, send):  # an app that completes lifespan
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return

    app = LiveConfig(inner, config=manager)
    async with lifespan(app):
        path.write_text(doc("m1", "m2", reload={"poll_interval_s": 0.05}))
        await await_until(lambda: names(manager) == ["m1", "m2"], timeout=2)
        path.write_text(doc("m1", "m2", "m3", reload={"watch": False}))
        # the change that turned watching off is loaded
        await await_until(lambda: names(manager) == ["m1", "m2", "m3"], timeout=2)
        path.write_text(doc("m9", reload={"watch": False}))
        await asyncio.sleep(0.3)  # an absence: six poll intervals of the old setting pass unseen
        assert names(manager) == ["m1", "m2", "m3"]  # off now
    assert app.watch._tasks == []


# -- Redis ------------------------------------------------------------------------------
@pytest.fixture
def redis_db4(redis_available):
    return redis_available + "/4"


def numsub(url: str, channel: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(dict(client.pubsub_numsub(channel)).get(channel.encode(), 0))
    finally:
        client.close()


async def test_a_notice_reloads_the_other_replica_not_the_sender(tmp_path, redis_db4):
    channel = f"test:config:{uuid.uuid4().hex}"
    section = {"redis_url": redis_db4, "channel": channel, "watch": False}
    replicas = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.json"
        path.write_text(doc("m1", reload=section))
        manager = ConfigManager(Config.from_file(path))
        replicas.append((path, manager, RedisReloadChannel(manager)))
    tasks = [asyncio.ensure_future(channel_.run()) for _, _, channel_ in replicas]
    try:
        await await_until(lambda: all(c.subscribed.is_set() for _, _, c in replicas), timeout=3)
        for path, _, _ in replicas:
            path.write_text(doc("m1", "m2", reload=section))
        (_, a, a_channel), (_, b, b_channel) = replicas
        assert a.reload().ok  # the admin API's call: origin "admin", published to the fleet
        await await_until(lambda: names(b) == ["m1", "m2"], timeout=3)
        assert b.last_reload.origin == "redis"
        # A notice by hand (redis-cli PUBLISH) works too.
        for path, _, _ in replicas:
            path.write_text(doc("m3", reload=section))
        import redis.asyncio as aioredis

        publisher = aioredis.Redis.from_url(redis_db4)
        await publisher.publish(channel, "reload")
        await publisher.aclose()
        await await_until(lambda: names(a) == ["m3"] and names(b) == ["m3"], timeout=3)
        # Notices arrive in order: had `a` taken its own (published first), it would show here.
        assert a.reloads["ok"] == 2 and a_channel.notices_received == 1  # never its own notice
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, _, channel_ in replicas:
            await channel_.aclose()


async def test_redis_down_only_means_no_notices(tmp_path, no_secrets_in_logs):
    path = tmp_path / "a.json"
    path.write_text(doc("m1", reload={"redis_url": "redis://127.0.0.1:9/4", "watch": False}))
    manager = ConfigManager(Config.from_file(path))
    channel = RedisReloadChannel(manager)
    task = asyncio.ensure_future(channel.run())

    def logged(text: str) -> bool:
        return any(text in line for line in no_secrets_in_logs.lines)

    await await_until(lambda: logged("config reload channel: Redis unavailable"))
    assert not channel.subscribed.is_set()
    path.write_text(doc("m2", reload={"redis_url": "redis://127.0.0.1:9/4", "watch": False}))
    assert manager.reload().ok  # the local reload works; publishing fails quietly
    await await_until(lambda: logged("config reload notice not published"))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await channel.aclose()


# -- real servers -----------------------------------------------------------------------
def chat(model: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


def rewrite(path, content: str) -> None:
    """As deploy tools do: write aside, then rename over the file."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(content)
    os.replace(tmp, path)


async def test_an_edit_reaches_a_running_server_under_load_without_a_failed_request(tmp_path):
    config = json.loads(doc("m1", reload={"poll_interval_s": 0.25}))
    with ProxyServer(config, tmp_path) as server:
        failures: list[str] = []
        served = 0
        stop = asyncio.Event()

        async def load() -> None:
            nonlocal served
            async with httpx2.AsyncClient(base_url=server.base_url, timeout=10) as client:
                while not stop.is_set():
                    try:
                        response = await client.post("/chat/completions", json=chat("m1"))
                    except httpx2.TransportError as exc:
                        failures.append(repr(exc))
                        continue
                    if response.status_code != 200:
                        failures.append(response.text)
                    served += 1

        workers = [asyncio.ensure_future(load()) for _ in range(4)]
        await await_until(lambda: served >= 8, message="the load to get going")
        started = time.monotonic()
        rewrite(server.config_path, doc("m1", "m2", reload={"poll_interval_s": 0.25}))
        async with httpx2.AsyncClient(base_url=server.base_url, timeout=10) as client:

            async def m2_served() -> bool:
                return (await client.post("/chat/completions", json=chat("m2"))).status_code == 200

            await await_until(m2_served, timeout=2, interval=0.05, message="the new model served")
        took = time.monotonic() - started
        after = served
        await await_until(lambda: served >= after + 8, message="more load after the reload")
        stop.set()
        await asyncio.gather(*workers)
        assert not failures, failures[:3]
        assert served > 20 and took < 2.0
        assert "config reloaded from" in server.log()


async def test_a_bad_edit_keeps_the_running_config_and_the_admin_api_shows_why(tmp_path):
    def content(*models, **extra):
        return doc(*models, auth=ADMIN, reload={"poll_interval_s": 0.1}, **extra)

    config = json.loads(content("m1"))
    with ProxyServer(config, tmp_path) as server:
        async with httpx2.AsyncClient(base_url=server.root_url, headers=HEADERS, timeout=10) as client:

            async def last_error() -> str | None:
                view = (await client.get("/admin/config")).json()
                last = view["last_reload"]
                return None if last is None or last["ok"] else last["error"]

            async def settle(predicate) -> None:
                await await_until(predicate, timeout=3, interval=0.05)

            # Invalid syntax.
            rewrite(server.config_path, '{"models": [')
            await settle(lambda: _truthy(last_error()))
            assert "cannot parse" in await last_error()
            assert (await client.post("/v1/chat/completions", json=chat("m1"))).status_code == 200
            # Invalid schema: the error names the file and the field.
            rewrite(
                server.config_path, content("m1", "m2").replace('"provider": "mock"', '"provider": "nope"', 1)
            )
            await settle(lambda: _contains(last_error(), "provider"))
            error = await last_error()
            assert str(server.config_path) in error and "models[0].deployments[0].provider" in error
            assert (await client.post("/v1/chat/completions", json=chat("m1"))).status_code == 200
            assert (await client.post("/v1/chat/completions", json=chat("m2"))).status_code == 404
            # The admin API reloads on demand (the watcher is switched off by this edit).
            rewrite(
                server.config_path, content("m1", "m3").replace('"poll_interval_s": 0.1', '"watch": false')
            )
            response = await client.post("/admin/config/reload")
            assert response.status_code == 200 and response.json()["reloaded"] is True
            assert (await client.post("/v1/chat/completions", json=chat("m3"))).status_code == 200
            view = (await client.get("/admin/config")).json()
            assert view["config"]["auth"]["api_keys"][0]["key_sha256"] == "***"
    log = server.log()
    assert "rejected, keeping the config in force" in log and str(server.config_path) in log


async def _truthy(value) -> bool:
    return bool(await value)


async def _contains(value, text: str) -> bool:
    found = await value
    return bool(found) and text in found


async def test_an_admin_reload_on_one_replica_reloads_the_other_through_redis(tmp_path, redis_db4):
    channel = f"test:config:{uuid.uuid4().hex}"

    def content(*models):
        return doc(*models, auth=ADMIN, reload={"watch": False, "redis_url": redis_db4, "channel": channel})

    config = json.loads(content("m1"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with ProxyServer(config, tmp_path / "a") as a, ProxyServer(config, tmp_path / "b") as b:
        await await_until(lambda: numsub(redis_db4, channel) == 2, timeout=5)
        for server in (a, b):
            rewrite(server.config_path, content("m1", "m2"))
        async with httpx2.AsyncClient(headers=HEADERS, timeout=10) as client:
            response = await client.post(a.root_url + "/admin/config/reload")
            assert response.status_code == 200

            async def m2_served_by_b() -> bool:
                reply = await client.post(b.base_url + "/chat/completions", json=chat("m2"))
                return reply.status_code == 200

            await await_until(m2_served_by_b, timeout=2, interval=0.05)
            view = (await client.get(b.root_url + "/admin/config")).json()
            assert view["last_reload"]["ok"] is True


async def test_sighup_reloads_every_worker(tmp_path):
    import signal

    config = json.loads(doc("m1", reload={"watch": False}))
    with ProxyServer(config, tmp_path, workers=2) as server:
        # both workers up (ready = one answered)
        await await_until(lambda: server.workers_started() >= 2, timeout=20, interval=0.05)
        server.config_path.write_text(doc("m1", "m2", reload={"watch": False}))
        os.kill(server.process.pid, signal.SIGHUP)
        async with httpx2.AsyncClient(timeout=10) as client:
            started = time.monotonic()
            statuses: list[int] = []
            while statuses[-10:] != [200] * 10:  # ten in a row on fresh connections: both workers
                assert time.monotonic() - started < 5, statuses
                response = await client.post(
                    server.base_url + "/chat/completions", json=chat("m2"), headers={"connection": "close"}
                )
                statuses.append(response.status_code)
        await await_until(lambda: server.log().count("config reloaded from") >= 2, timeout=5, interval=0.05)
    assert server.log().count("config reloaded from") == 2
