"""Every file in examples/ and docs/deploy/, run the way a user would run it."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import httpx2
import openai
import yaml

from asgi_llm import Config
from asgi_llm.auth import hash_key
from asgi_llm.lifespan import lifespan
from tests.fakes.upstream import Behavior, FakeUpstream
from tests.harness import ProxyServer

ROOT = Path(__file__).parents[2]
USER = [{"role": "user", "content": "hi"}]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_starlette_mount(asgi_client):
    example = load("starlette_mount")
    async with lifespan(example.app):
        client = asgi_client(app=example.app)
        assert (await client.get("/")).json() == {"app": "mine"}
        reply = await client.post("/llm/v1/chat/completions", json={"model": "mock-1", "messages": USER})
        assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
        assert (await client.get("/llm/v1/models")).json()["data"][0]["id"] == "mock-1"
        assert (await client.get("/llm/v1/nothing")).status_code == 404
        # Health checks answer inside the mount too (the path inside it, not the full path).
        assert (await client.get("/llm/healthz")).json() == {"status": "ok"}
        assert (await client.get("/llm/readyz")).status_code == 200


async def test_custom_order(asgi_client):
    client = asgi_client(app=load("custom_order").app)
    body = {"model": "mock-1", "messages": USER}
    statuses = [(await client.post("/public/v1/chat/completions", json=body)).status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
    assert (await client.post("/private/v1/chat/completions", json=body)).status_code == 401
    ok = await client.post(
        "/private/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-private-example"}
    )
    assert ok.status_code == 200


async def test_public_cache_before_auth(asgi_client):
    client = asgi_client(app=load("public_cache").app)
    body = {"model": "mock-1", "messages": USER}
    key = {"authorization": "Bearer sk-writer-example"}
    refused = await client.post("/v1/chat/completions", json=body)
    assert refused.status_code == 401  # a new question needs a key, and no error is stored
    fresh = await client.post("/v1/chat/completions", json=body, headers=key)
    assert fresh.status_code == 200 and fresh.headers["x-cache"] == "miss"
    public = await client.post("/v1/chat/completions", json=body)  # no key: served from the cache
    assert public.status_code == 200
    assert (public.headers["x-cache"], public.headers["x-cache-kind"]) == ("hit", "exact")
    assert public.json()["choices"] == fresh.json()["choices"]
    streamed = await client.post("/v1/chat/completions", json={**body, "stream": True})
    assert streamed.headers["x-cache"] == "hit" and streamed.text.rstrip().endswith("data: [DONE]")
    other = {"model": "mock-1", "messages": [{"role": "user", "content": "something else"}]}
    assert (await client.post("/v1/chat/completions", json=other)).status_code == 401
    assert (await client.get("/v1/models")).status_code == 401  # only answers are public


async def test_metrics_outermost_and_innermost(asgi_client):
    example = load("metrics_placement")
    client = asgi_client(app=example.app)
    body = {"model": "mock-1", "messages": USER}
    key = {"authorization": "Bearer sk-metrics-example"}
    for prefix in ("/outer", "/inner"):
        url = f"{prefix}/v1/chat/completions"
        statuses = [
            (await client.post(url, json=body, headers=headers)).status_code
            for headers in ({}, key, key, key)
        ]
        assert statuses == [401, 200, 200, 429]  # the limit: 2 requests a minute per key
    outer, inner = example.outer_tally, example.inner_tally
    assert outer.statuses == {401: 1, 200: 2, 429: 1}  # every request, refusals included
    assert inner.statuses == {200: 2}  # only what was admitted
    assert [(r.error_type, r.error_code) for r in outer.records if r.status >= 400] == [
        ("authentication_error", "invalid_api_key"),
        ("rate_limit_error", "rate_limit_exceeded"),
    ]
    assert [r.rate_limited for r in outer.records] == [False, False, False, True]
    for records in (outer.records, inner.records):
        admitted = [r for r in records if r.status == 200]
        assert all(r.deployment == "mock" and r.total_s > 0 and r.upstream_s is not None for r in admitted)


def test_standalone_config_with_openai_and_a_local_fallback(tmp_path):
    with FakeUpstream("openai") as cloud, FakeUpstream("ollama") as local:
        env = {
            "OPENAI_BASE_URL": cloud.base_url,
            "OPENAI_API_KEY": "sk-cloud-key-1",
            "LOCAL_BASE_URL": local.base_url,
            "APP_KEY_SHA256": hash_key("sk-app-example"),
        }
        with ProxyServer(ROOT / "examples" / "standalone.yaml", tmp_path, env=env) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="sk-app-example", max_retries=0)
            raw = client.chat.completions.with_raw_response.create(model="mini", messages=USER)
            assert raw.headers["x-llm-deployment"] == "openai-mini"
            cloud.default = Behavior(status=503)
            raw = client.chat.completions.with_raw_response.create(model="mini", messages=USER)
            assert raw.headers["x-llm-deployment"] == "local-vllm"
            assert local.requests[-1].json["model"] == "qwen2.5:7b"
            client.close()


def test_dockerfile_and_kubernetes_manifest_start_the_same_command(tmp_path, redis_available):
    dockerfile = (ROOT / "docs" / "deploy" / "Dockerfile").read_text()
    cmd_line = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    command = yaml.safe_load(cmd_line[4:])
    documents = list(yaml.safe_load_all((ROOT / "docs" / "deploy" / "kubernetes.yaml").read_text()))
    kinds = {doc["kind"]: doc for doc in documents}
    deployment = kinds["Deployment"]["spec"]
    assert deployment["replicas"] == 3
    container = deployment["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["memory"]
    env = {item["name"]: item for item in container["env"]}
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["key"] == "redis-url"
    assert command[:2] == container["args"][:2] == ["asgi-llm", "serve"]

    config_file = tmp_path / "proxy.yaml"
    config_file.write_text(kinds["ConfigMap"]["data"]["proxy.yaml"])
    secrets = {
        "REDIS_URL": redis_available,
        "OPENAI_API_KEY": "sk-k8s-test",
        "OPS_KEY_SHA256": hash_key("sk-ops-example"),
    }
    Config.from_file(config_file, environ=secrets)  # the ConfigMap is a valid config
    args = container["args"][2:]
    # the container's own flags, with a local address and our file instead of the mount
    local = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in ("--host", "--port", "--config", "--workers"):
            skip = True
            continue
        local.append(arg)
    with ProxyServer(config_file, tmp_path, env=secrets, extra_args=tuple(local)) as server:
        assert httpx2.get(server.root_url + "/readyz").status_code == 200
        assert httpx2.get(server.base_url + "/models").status_code == 401
        ok = httpx2.get(server.base_url + "/models", headers={"authorization": "Bearer sk-ops-example"})
        assert ok.json()["data"][0]["id"] == "gpt-4o-mini"
    assert shlex.join(command)  # the Dockerfile's CMD is valid JSON-array form
