"""API keys: kept and compared only as SHA-256 digests; config keys and a fleet key store."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from asgi_llm.auth.quotas import Quota, Settings
from asgi_llm.auth.teams import TeamStore
from asgi_llm.breaker import Breaker
from asgi_llm.config.loader import Config
from asgi_llm.config.schema import Auth, KeyStore
from asgi_llm.errors import ServiceUnavailable
from asgi_llm.redis_client import connect, errors, parse, slot_tag


def hash_key(key: str) -> str:
    """The `sha256:<hex>` form used in config (`asgi-llm hash-key`)."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    digest: str
    roles: tuple[str, ...]
    tenant: str | None
    # A store key's own settings (docs/teams.md), and until when it works: its expiry, or the
    # end of the grace period of a secret replaced by a rotation (`rotated`).
    settings: Settings | None = None
    expires_at: float | None = None
    rotated: bool = False
    quota: Quota | None = None  # what the limiter counts for this key, from `settings`

    def refusal(self, now: float) -> str | None:
        """Why the key no longer works (`key_expired`, `key_rotated`), or None."""
        if self.expires_at is None or now < self.expires_at:
            return None
        return "key_rotated" if self.rotated else "key_expired"

    def to_json(self) -> bytes:
        """The stored form (never the secret; the digest is the hash field it is stored at)."""
        return orjson.dumps(
            {
                "id": self.id,
                "roles": list(self.roles),
                "tenant": self.tenant,
                "settings": self.settings.to_json() if self.settings is not None else None,
                "expires_at": self.expires_at,
                "rotated": self.rotated,
            }
        )


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


RETRY_S = 1.0  # while the store is down, Redis is tried at most this often; others answer at once
log = logging.getLogger("asgi_llm.auth")


def _outage_logs(policy: str) -> tuple[Callable[[BaseException], None], Callable[[float], None]]:
    """The two lines of a key-store outage: when it starts and when it ends, once each."""
    served = (
        "config keys are served from the config file, except those last seen revoked"
        if policy == "open"
        else "config keys are refused too (on_unavailable: closed)"
    )

    def down(exc: BaseException) -> None:
        log.warning(
            "auth key store unavailable (%s): keys kept only in the store get 503 and %s, "
            "until it answers again",
            exc.__class__.__name__,
            served,
        )

    def up(seconds: float) -> None:
        log.info("auth key store available again after %.1f s", seconds)

    return down, up


class RedisKeyStore:
    """Keys shared by a fleet. A revoked key is refused by every replica within `cache_ttl_s`.

    Layout: hash `<prefix>:keys` digest -> record JSON; hash `<prefix>:key_ids` id -> digest;
    set `<prefix>:revoked` of ids (config keys can be revoked too); what the admin API adds
    (listing, rotation, teams) is in auth/key_registry.py and auth/teams.py. Lookups are by
    digest: no key pattern is ever built from client input.

    Redis down: a store key gets 503 (only the store can vouch for it). A config key is who
    the config says; the store only knows whether it was revoked. With `on_unavailable: open`
    it is served, unless the last answer this replica had was "revoked"; with `closed`, 503.
    """

    def __init__(self, settings: KeyStore, client: Any = None) -> None:
        self.settings = settings
        self._client = client
        # On a cluster every key of the store shares one slot (its writes are transactions
        # over several keys: docs/fleet.md); on one Redis the prefix stays as it was, so keys
        # minted before remain.
        cluster = parse(settings.url).kind == "cluster"
        self.prefix = slot_tag(settings.prefix) if cluster else settings.prefix
        self._keys = f"{self.prefix}:keys"
        self._ids = f"{self.prefix}:key_ids"
        self._revoked = f"{self.prefix}:revoked"
        self._cache = _TTLCache(settings.cache_ttl_s)
        self._revoked_seen: dict[str, bool] = {}  # config key id -> the store's last answer
        self._teams: TeamStore | None = None
        on_down, on_up = _outage_logs(settings.on_unavailable)
        # While down, one lookup per pause tries Redis; the others answer 503 at once.
        self._outage = Breaker(pause_s=RETRY_S, single_probe=True, on_down=on_down, on_up=on_up)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect(self.settings.url, timeout=self.settings.timeout_s)
        return self._client

    async def aclose(self) -> None:
        if self._teams is not None:
            await self._teams.aclose()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def degraded(self) -> bool:
        """Redis failed the last time it was asked (for /readyz and the metrics)."""
        return self._outage.down

    async def available(self) -> bool:
        """For /readyz: Redis answers. Asks it (PING) when it has not been heard for RETRY_S."""
        if time.monotonic() - self._outage.checked_at >= RETRY_S:
            with contextlib.suppress(ServiceUnavailable):
                await self.call(lambda client: client.ping())
        return not self.degraded

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
        if config_record is not None:
            return await self._unless_revoked(config_record, cache_key)
        record = self._decode(await self.call(lambda client: client.hget(self._keys, digest)), digest)
        self._cache.put(cache_key, record)
        return record

    async def _unless_revoked(self, record: KeyRecord, cache_key: str) -> KeyRecord | None:
        try:
            revoked = bool(await self.call(lambda client: client.sismember(self._revoked, record.id)))
        except ServiceUnavailable:
            if self.settings.on_unavailable == "closed":
                raise
            return None if self._revoked_seen.get(record.id) else record
        self._revoked_seen[record.id] = revoked
        self._cache.put(cache_key, not revoked)
        return None if revoked else record

    async def call(self, command: Callable[[Any], Awaitable[Any]]) -> Any:
        """One lookup command; 503 at once while Redis is down and not due for another try,
        so a blackholed Redis costs one socket timeout per RETRY_S, not one per request."""
        if not self._outage.allows():
            raise _unavailable()
        try:
            answer = await command(self.client)
        except errors() as exc:
            self._outage.failed(exc)
            raise _unavailable() from exc
        self._outage.succeeded()
        return answer

    @staticmethod
    def _decode(raw: bytes | None, digest: str) -> KeyRecord | None:
        return decode_record(raw, digest)

    def forget(self, key_id: str, *, revoked: bool = False) -> None:
        """A key changed here (revoked, rotated): this replica stops serving its old record
        at once; the others within `cache_ttl_s`."""
        self._cache.clear()
        if revoked:
            self._revoked_seen[key_id] = True

    @property
    def teams(self) -> TeamStore:
        """The teams kept in this store (asgi_llm/auth/teams.py), one per store."""
        if self._teams is None:
            self._teams = TeamStore(self)
        return self._teams


def decode_record(raw: bytes | None, digest: str) -> KeyRecord | None:
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
        key_id = str(data["id"])
        settings = Settings.from_json(data["settings"]) if data.get("settings") else None
        expires_at = data.get("expires_at")
        return KeyRecord(
            key_id,
            digest,
            tuple(map(str, data["roles"])),
            data.get("tenant"),
            settings,
            float(expires_at) if expires_at is not None else None,
            data.get("rotated") is True,
            settings.quota("key", key_id) if settings is not None else None,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # a foreign or corrupt entry grants nothing


class KeyStores:
    """The key store of each config snapshot, made on first use and shared by whoever needs
    it (AuthMiddleware looks keys up, AdminMiddleware mints and revokes them): one client and
    one revocation cache per store, never two."""

    def __init__(self) -> None:
        self._stores: dict[KeyStore, RedisKeyStore] = {}

    def for_config(self, config: Config) -> RedisKeyStore | None:
        spec = config.auth.key_store if config.auth else None
        if spec is None:
            return None
        store = self._stores.get(spec)
        if store is None:
            store = self._stores[spec] = RedisKeyStore(spec)
        return store

    async def aclose(self) -> None:
        stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            await store.aclose()


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The key store is unavailable; try again shortly.", code="dependency_unavailable", retry_after=1
    )
