"""API keys: kept and compared only as SHA-256 digests; config keys and a fleet key store."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson

from asgi_llm.config.schema import Auth, KeyStore
from asgi_llm.errors import ServiceUnavailable
from asgi_llm.redis_client import connect, errors


def hash_key(key: str) -> str:
    """The `sha256:<hex>` form used in config (`asgi-llm hash-key`)."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    digest: str
    roles: tuple[str, ...]
    tenant: str | None


class ConfigKeys:
    """The keys written in the config, looked up by digest."""

    def __init__(self, settings: Auth) -> None:
        self._by_digest = {
            k.key_sha256: KeyRecord(k.id, k.key_sha256, k.roles, k.tenant) for k in settings.api_keys
        }

    def lookup(self, digest: str) -> KeyRecord | None:
        record = self._by_digest.get(digest)
        # The dict lookup is by digest of the secret, so its timing tells nothing useful; the
        # explicit compare keeps the property if the table ever becomes a scan.
        if record is not None and hmac.compare_digest(record.digest, digest):
            return record
        return None


class _TTLCache:
    """A small bounded cache with per-entry expiry (positive and negative answers)."""

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._items: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, key: str) -> tuple[bool, Any]:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return False, None
        return True, item[1]

    def put(self, key: str, value: Any) -> None:
        self._items[key] = (time.monotonic() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


class RedisKeyStore:
    """Keys shared by a fleet. A revoked key is refused by every replica within `cache_ttl_s`.

    Layout: hash `<prefix>:keys` digest -> record JSON; hash `<prefix>:key_ids` id -> digest;
    set `<prefix>:revoked` of ids (config keys can be revoked too). Lookups are by digest:
    no key pattern is ever built from client input.
    """

    def __init__(self, settings: KeyStore, client: Any = None) -> None:
        self.settings = settings
        self._client = client
        self._keys = f"{settings.prefix}:keys"
        self._ids = f"{settings.prefix}:key_ids"
        self._revoked = f"{settings.prefix}:revoked"
        self._cache = _TTLCache(settings.cache_ttl_s)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.settings.url)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def cached(self, digest: str) -> KeyRecord | None:
        """A store key this replica looked up within `cache_ttl_s`, without asking Redis."""
        hit, value = self._cache.get(digest)
        return value if hit else None  # type: ignore[no-any-return]

    async def lookup(self, digest: str, config_record: KeyRecord | None) -> KeyRecord | None:
        """The live record for a digest: a store key, or a config key not revoked."""
        cache_key = digest if config_record is None else "cfg:" + config_record.id
        hit, value = self._cache.get(cache_key)
        if hit:
            return config_record if config_record is not None and value else value
        try:
            if config_record is not None:
                revoked = await self.client.sismember(self._revoked, config_record.id)
                self._cache.put(cache_key, not revoked)
                return None if revoked else config_record
            raw = await self.client.hget(self._keys, digest)
        except errors() as exc:
            raise ServiceUnavailable(
                "The key store is unavailable; try again shortly.",
                code="dependency_unavailable",
                retry_after=1,
            ) from exc
        record = self._decode(raw, digest)
        self._cache.put(cache_key, record)
        return record

    @staticmethod
    def _decode(raw: bytes | None, digest: str) -> KeyRecord | None:
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
            return KeyRecord(str(data["id"]), digest, tuple(map(str, data["roles"])), data.get("tenant"))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None  # a foreign or corrupt entry grants nothing

    async def record_for(self, key_id: str) -> KeyRecord | None:
        """The stored record of a key id (admin checks before a revocation)."""
        digest = await self.client.hget(self._ids, key_id)
        if digest is None:
            return None
        digest = digest.decode() if isinstance(digest, bytes) else str(digest)
        return self._decode(await self.client.hget(self._keys, digest), digest)

    async def create(self, key_id: str, roles: tuple[str, ...], tenant: str | None) -> str:
        """Mint a key; the clear key is returned once and never stored."""
        key = "sk-" + secrets.token_urlsafe(32)
        digest = hash_key(key)
        record = orjson.dumps({"id": key_id, "roles": list(roles), "tenant": tenant})
        created = await self.client.hsetnx(self._ids, key_id, digest)
        if not created:
            raise ValueError(f"a key with id {key_id!r} exists")
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys, digest, record)
            pipe.srem(self._revoked, key_id)
            await pipe.execute()
        return key

    async def revoke(self, key_id: str) -> bool:
        digest = await self.client.hget(self._ids, key_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(self._revoked, key_id)
            if digest is not None:
                pipe.hdel(self._keys, digest)
                pipe.hdel(self._ids, key_id)
            await pipe.execute()
        self._cache.clear()  # this replica stops at once; others within cache_ttl_s
        return True
