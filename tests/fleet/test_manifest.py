"""docs/deploy/kubernetes-cluster.yaml: its ConfigMap is a valid config on a real cluster and
Sentinel set, and its container's own flags serve it (minting a key goes to Sentinel)."""

from __future__ import annotations

from pathlib import Path

import httpx2
import yaml

from asgi_llm import Config
from asgi_llm.auth.keys import hash_key
from tests.harness import ProxyServer

ROOT = Path(__file__).resolve().parents[2]
OPS = "sk-ops-cluster-example"


def test_the_cluster_manifest_serves_on_a_cluster_and_sentinel(redis_cluster, redis_sentinel, tmp_path):
    documents = list(yaml.safe_load_all((ROOT / "docs" / "deploy" / "kubernetes-cluster.yaml").read_text()))
    kinds = {doc["kind"]: doc for doc in documents}
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert {item["name"] for item in container["env"]} >= {"REDIS_CLUSTER_URL", "REDIS_SENTINEL_URL"}
    config_file = tmp_path / "proxy.yaml"
    config_file.write_text(kinds["ConfigMap"]["data"]["proxy.yaml"])
    secrets = {
        "REDIS_CLUSTER_URL": redis_cluster.url,
        "REDIS_SENTINEL_URL": redis_sentinel.url,
        "OPENAI_API_KEY": "sk-k8s-test",
        "OPS_KEY_SHA256": hash_key(OPS),
    }
    config = Config.from_file(config_file, environ=secrets)
    assert config.limits is not None and config.limits.storage.startswith("redis+cluster://")
    args, local, skip = container["args"][2:], [], False
    for arg in args:  # the container's own flags, less the address, the mount and the workers
        if skip or arg in ("--host", "--port", "--config", "--workers"):
            skip = not skip
            continue
        local.append(arg)
    with ProxyServer(config_file, tmp_path, env=secrets, extra_args=tuple(local)) as server:
        assert httpx2.get(server.root_url + "/readyz").status_code == 200
        ops = {"authorization": f"Bearer {OPS}"}
        minted = httpx2.post(
            server.root_url + "/admin/keys", headers=ops, json={"id": "k8s-1", "roles": ["admin"]}
        )
        assert minted.status_code == 201, minted.text
        listed = httpx2.get(
            server.base_url + "/models", headers={"authorization": f"Bearer {minted.json()['key']}"}
        )
        assert listed.json()["data"][0]["id"] == "gpt-4o-mini"
