"""The one module that makes Redis clients, for every feature that keeps state in Redis: rate
limits and budgets, the exact cache and its single-flight leases, the semantic index's fleet
stream, the key store, shared cooldowns, the reload channel, the response store.

One URL grammar (config/urls.py checks it when the config loads; `parse` reads it here):

    redis://[user:password@]host[:port][/db]      rediss://... (TLS)
    redis+unix:///path/to/redis.sock[?db=N]       (unix:///... as redis-py spells it, too)
    redis+cluster://[user:password@]h1:p1,h2:p2   a Redis Cluster: any of its nodes, db 0
    redis+sentinel://[user:password@]s1:p1,s2:p2/service[/db]
                                                  the primary that Sentinel names `service`

These are `limits`' own spellings (`async+redis+cluster://...`, `...+sentinel://.../service`),
so a storage URI written for `limits` means the same here; the client is ours, not theirs.

Every command a client sends is bounded by `timeout` (an asyncio deadline on top of the socket
timeouts), so a Redis that is down, failing over or blackholed never holds a request longer
than that: the caller gets an error from `errors()` and applies its feature's policy
(docs/fleet.md). MOVED and ASK are followed by the cluster client; a Sentinel-managed client
asks the sentinels for the primary again after a connection error. Pub/sub lives in
`asgi_llm.redis_channels` (sharded on a cluster).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_TIMEOUT_S = 0.5
MAX_CONNECTIONS = 64  # per process and node; a burst waits for a free one (up to the deadline)
SCHEMES = ("redis", "rediss", "unix", "redis+unix", "redis+cluster", "redis+sentinel")


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """What a Redis URL names. `url` is redis-py's own URL for a single server."""

    kind: Literal["single", "cluster", "sentinel"]
    url: str = ""
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None


def is_redis_url(url: str) -> bool:
    return urlsplit(url.removeprefix("async+")).scheme.lower() in SCHEMES


def parse(url: str) -> RedisTarget:
    """Read a URL of the grammar above (already checked by config/urls.py); `limits`' `async+`
    prefix is read past."""
    url = url.removeprefix("async+")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"not a Redis URL scheme: {scheme!r}")
    if scheme in ("redis", "rediss", "unix"):
        return RedisTarget("single", url=url)
    if scheme == "redis+unix":
        return RedisTarget("single", url="unix" + url[len("redis+unix") :])
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    nodes = tuple(_node(item.strip()) for item in hosts.split(",") if item.strip())
    target = RedisTarget(
        "cluster", nodes=nodes, username=unquote(username) or None, password=unquote(password) or None
    )
    if scheme == "redis+cluster":
        return target
    path = [segment for segment in parts.path.split("/") if segment]
    db = path[1] if len(path) > 1 else parse_qs(parts.query).get("db", ["0"])[0]
    return replace(target, kind="sentinel", service=unquote(path[0]) if path else "", db=int(db))


def _node(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if host.startswith("["):
        host = host[1:-1]
    return (host, int(port)) if host else (text, 6379)


def slot_tag(prefix: str) -> str:
    """`{prefix}`: every key made from it hashes to one cluster slot, so a Lua script or a
    MULTI over several of them runs on one node. A prefix already holding a tag is kept."""
    return prefix if "{" in prefix else "{" + prefix + "}"


def connect(url: str, *, timeout: float = DEFAULT_TIMEOUT_S, max_connections: int = MAX_CONNECTIONS) -> Any:
    """An asyncio client for `url` (nothing is sent before its first command). Close it with
    `await client.aclose()`: that closes its pools (and a sentinel client's sentinels)."""
    try:
        import redis.asyncio  # noqa: F401 - the optional extra
    except ImportError as exc:  # pragma: no cover - the `redis` extra is missing
        raise RuntimeError("Redis support needs the extra: pip install 'asgi-llm[redis]'") from exc
    target = parse(url)
    single, cluster, sentinel_managed = _classes()
    sockets: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if target.kind == "cluster":
        from redis.asyncio.cluster import ClusterNode

        client = cluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            username=target.username,
            password=target.password,
            max_connections=max_connections,
            require_full_coverage=False,  # a shard failing over fails only its own keys
            **sockets,
        )
    elif target.kind == "sentinel":
        from redis.asyncio.sentinel import Sentinel

        manager = Sentinel(list(target.nodes), **sockets)  # sentinels: no password (docs/fleet.md)
        client = manager.master_for(
            target.service,
            redis_class=sentinel_managed,
            db=target.db,
            username=target.username,
            password=target.password,
            max_connections=max_connections,
            health_check_interval=30,
            **sockets,
        )
    else:
        from redis.asyncio import BlockingConnectionPool

        pool = BlockingConnectionPool.from_url(
            target.url, max_connections=max_connections, timeout=timeout, health_check_interval=30, **sockets
        )
        client = single.from_pool(pool)  # closing the client closes the pool
    client.deadline_s = timeout
    if target.kind != "single":  # one server: its BlockingConnectionPool already waits
        client.in_flight = asyncio.Semaphore(max_connections)
    return client


def node_client(host: str, port: int, *, username: str | None, password: str | None, timeout: float) -> Any:
    """A client of one cluster node (a sharded subscription is held on the slot's owner)."""
    client = _classes()[0](
        host=host,
        port=port,
        username=username,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    client.deadline_s = timeout
    return client


def is_cluster(client: Any) -> bool:
    return isinstance(client, _classes()[1])


def watch_error() -> type[BaseException]:
    """What an optimistic transaction (WATCH ... MULTI/EXEC) raises when a watched key changed."""
    from redis.exceptions import WatchError

    return WatchError


def errors() -> tuple[type[BaseException], ...]:
    """What a Redis outage looks like to callers (connection, timeout and server errors)."""
    import redis

    return (redis.RedisError, OSError, TimeoutError)


@functools.cache
def _classes() -> tuple[type[Any], type[Any], type[Any]]:
    """The client classes, made on first use (redis is an optional extra): each bounds every
    command by the client's `deadline_s`."""
    from redis.asyncio import Redis, RedisCluster

    class Bounded:
        """Every command within the client's deadline, and, once `in_flight` is set, waiting
        for one of `max_connections` slots first: redis-py's cluster and Sentinel pools raise
        (MaxConnectionsError) when exhausted instead of waiting as BlockingConnectionPool does."""

        deadline_s = DEFAULT_TIMEOUT_S
        in_flight: asyncio.Semaphore | None = None

        async def execute_command(self, *args: Any, **options: Any) -> Any:
            async with asyncio.timeout(self.deadline_s):
                if self.in_flight is None:
                    return await super().execute_command(*args, **options)  # type: ignore[misc]
                async with self.in_flight:
                    return await super().execute_command(*args, **options)  # type: ignore[misc]

    class BoundedRedis(Bounded, Redis):  # type: ignore[misc]
        pass

    class BoundedCluster(Bounded, RedisCluster):  # type: ignore[misc]
        pass

    class SentinelManaged(BoundedRedis):
        async def aclose(self, close_connection_pool: bool | None = None) -> None:
            await super().aclose(close_connection_pool)
            for sentinel in self.connection_pool.sentinel_manager.sentinels:  # type: ignore[attr-defined]
                await sentinel.aclose()

    return BoundedRedis, BoundedCluster, SentinelManaged


__all__ = [
    "DEFAULT_TIMEOUT_S",
    "SCHEMES",
    "RedisTarget",
    "connect",
    "errors",
    "is_cluster",
    "is_redis_url",
    "node_client",
    "parse",
    "slot_tag",
    "watch_error",
]
