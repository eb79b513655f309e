"""Session fixtures: a real Redis Cluster and a real Sentinel set, started in a temporary
directory and torn down at the end. Without the binaries the tests skip and say why; with
them, under CI (CI=true or ASGI_LLM_REQUIRE_REDIS=1), a topology that cannot start fails."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fleet.servers import RedisClusterSet, RedisSentinelSet, binaries


def _required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("ASGI_LLM_REQUIRE_REDIS") == "1"


def _start(kind, tmp_path_factory) -> Iterator:
    missing = binaries()
    if missing:
        pytest.skip(f"Redis {kind.__name__}: {missing} (apt-get install redis-server redis-sentinel)")
    try:
        topology = kind(tmp_path_factory.mktemp(kind.__name__))
    except Exception as exc:  # noqa: BLE001 - reported as a failure or a skip below
        message = f"could not start {kind.__name__}: {exc!r}"
        if _required():
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield topology
    finally:
        topology.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory) -> Iterator[RedisClusterSet]:
    yield from _start(RedisClusterSet, tmp_path_factory)


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory) -> Iterator[RedisSentinelSet]:
    yield from _start(RedisSentinelSet, tmp_path_factory)


@pytest.fixture(scope="module", params=["cluster", "sentinel"])
def topology(request):
    """Each topology in turn (module scope: the fleet on it is started once per module)."""
    return request.getfixturevalue("redis_cluster" if request.param == "cluster" else "redis_sentinel")
