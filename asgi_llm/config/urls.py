"""Every URL in the config is parsed when the config loads (the schema's validators call
these), so a typo fails `check-config` and a reload at its field path instead of failing
the server at startup or a request later. Plain stdlib parsing: Redis is an optional extra.

Each checker returns the value unchanged or raises ValueError with what is wrong; the
message never repeats the URL, which may hold a password.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, parse_qs, urlsplit

_LABEL = re.compile(r"^(?!-)[\w-]{1,63}(?<!-)$")  # \w: letters of any script (IDN), digits, _
HTTP_SCHEMES = ("http", "https")
# One grammar for every Redis-backed feature (asgi_llm/redis_client.py reads it): one server,
# TLS, a unix socket (`unix://` is redis-py's spelling, `redis+unix://` limits'), a cluster by
# any of its nodes, a Sentinel-managed primary by its sentinels and service name.
REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+unix", "redis+cluster", "redis+sentinel")
CACHE_SCHEMES = ("memory", *REDIS_SCHEMES)
STORAGE_SCHEMES = ("memory", *REDIS_SCHEMES)
STORE_SCHEMES = ("memory", *REDIS_SCHEMES)


def _split(value: str, schemes: tuple[str, ...], kind: str) -> SplitResult:
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # e.g. an unclosed "[" of an IPv6 address
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme.lower() not in schemes or "://" not in value:
        listed = ", ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(f"must be {kind} URL: {listed}")
    return parts


def check_host(host: str) -> str:
    """A DNS name or an IP address, nothing else (no port, path or spaces)."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not host or len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"invalid host {host!r}")
    return host


def _check_netloc(netloc: str, *, default_port: bool = True) -> None:
    """`[user[:password]@]host[:port]`, the port an integer from 1 to 65535."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):  # [IPv6]:port
        host, _, rest = hostport[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        if rest and port is None:
            raise ValueError(f"invalid host {hostport!r}")
        try:
            ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            raise ValueError(f"invalid IPv6 address {host!r}") from None
    else:
        host, colon, port_text = hostport.partition(":")
        port = port_text if colon else None
        if not host:
            raise ValueError("needs a host")
        check_host(host)
    if port is not None and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"invalid port {port!r}")
    if port is None and not default_port:
        raise ValueError(f"{host!r} needs a port")


def check_http_url(value: str) -> str:
    """An http:// or https:// URL with a valid host and, if given, a valid port."""
    parts = _split(value, HTTP_SCHEMES, "an http:// or https://")
    if not parts.netloc.rpartition("@")[2]:
        raise ValueError("must be an http:// or https:// URL with a host")
    _check_netloc(parts.netloc)
    return value


def _check_db(parts: SplitResult) -> None:
    """redis-py reads the path as the database number, and quietly: `/abc` is db 0, `/1/2`
    is db 12. Refused here instead."""
    path = parts.path.strip("/")
    if path and not (path.isascii() and path.isdigit()):
        raise ValueError(f"invalid database number {path!r} (the path is /0, /1, ...)")
    for db in parse_qs(parts.query).get("db", []):
        if not (db.isascii() and db.isdigit()):
            raise ValueError(f"invalid database number {db!r}")


def check_redis_url(value: str, schemes: tuple[str, ...] = REDIS_SCHEMES) -> str:
    """A Redis URL of the one grammar (docs/fleet.md):
    `redis[s]://[user:password@]host[:port][/db]`, `unix:///path` or `redis+unix:///path[?db=N]`,
    `redis+cluster://[user:password@]h1:p1,h2:p2`,
    `redis+sentinel://[user:password@]s1:p1,s2:p2/service[/db]`."""
    parts = _split(value, schemes, "a Redis")
    scheme = parts.scheme.lower()
    if scheme in ("unix", "redis+unix"):
        if not parts.path:
            raise ValueError(f"a {scheme}:// URL needs the socket's path: {scheme}:///path/to/redis.sock")
        _check_db(parts._replace(path=""))
        return value
    if scheme in ("redis", "rediss"):
        _check_netloc(parts.netloc)
        _check_db(parts)
        return value
    userinfo, at, nodes = parts.netloc.rpartition("@")
    if not nodes.strip():
        raise ValueError(f"a {scheme}:// URL needs at least one host:port")
    for node in nodes.split(","):  # a comma-separated list of nodes, each with its port
        _check_netloc(userinfo + at + node.strip(), default_port=False)
    path = [segment for segment in parts.path.split("/") if segment]
    if scheme == "redis+cluster":
        if path or parse_qs(parts.query).get("db"):
            raise ValueError("a Redis Cluster has only database 0: no /db in a redis+cluster:// URL")
        return value
    if not path or len(path) > 2:
        raise ValueError("a redis+sentinel:// URL ends with the service: s1:26379,s2:26379/mymaster[/db]")
    _check_db(parts._replace(path="/".join(path[1:])))
    return value


def check_cache_backend(value: str) -> str:
    """`memory://`, or a Redis URL."""
    parts = _split(value, CACHE_SCHEMES, "a cache backend")
    return value if parts.scheme.lower() == "memory" else check_redis_url(value)


def check_store_url(value: str) -> str:
    """`memory://`, or a Redis URL."""
    parts = _split(value, STORE_SCHEMES, "a memory:// or Redis")
    return value if parts.scheme.lower() == "memory" else check_redis_url(value)


def check_storage_uri(value: str) -> str:
    """`memory://` or a Redis URL, as `limits` spells its storages (an `async+` prefix, which
    `limits` uses to pick its async storages, is accepted and means the same)."""
    plain = value[len("async+") :] if value.startswith("async+") else value
    parts = _split(plain, STORAGE_SCHEMES, "memory:// or a Redis `limits` storage")
    if parts.scheme.lower() != "memory":
        check_redis_url(plain)
    return value


__all__ = [
    "check_cache_backend",
    "check_host",
    "check_http_url",
    "check_redis_url",
    "check_storage_uri",
    "check_store_url",
]
