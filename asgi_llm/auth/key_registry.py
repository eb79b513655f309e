"""The admin side of the key store: mint, list, rotate and revoke keys (docs/teams.md).

Beside RedisKeyStore's layout (keys by digest, ids, revoked ids) it keeps two hashes:
`<prefix>:key_meta` id -> what `GET /admin/keys` shows (never the key, never its digest),
kept after a revocation so the listing says `revoked`; and `<prefix>:key_prev` id -> the
digests of secrets replaced by a rotation and still in their grace period, so a revocation
ends them too. Every write of one change is one MULTI/EXEC.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from typing import Any

import orjson

from asgi_llm.auth.keys import KeyRecord, RedisKeyStore, decode_record, hash_key
from asgi_llm.auth.quotas import Settings

MAX_PREVIOUS = 4  # secrets in grace per key; a fifth rotation ends the oldest grace at once


class KeyExists(ValueError):
    pass


def _new_key() -> tuple[str, str]:
    key = "sk-" + secrets.token_urlsafe(32)
    return key, hash_key(key)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class KeyRegistry:
    def __init__(self, store: RedisKeyStore) -> None:
        self.store = store
        prefix = store.settings.prefix
        self._keys = f"{prefix}:keys"
        self._ids = f"{prefix}:key_ids"
        self._revoked = f"{prefix}:revoked"
        self._meta = f"{prefix}:key_meta"
        self._prev = f"{prefix}:key_prev"

    @property
    def client(self) -> Any:
        return self.store.client

    async def record_for(self, key_id: str) -> KeyRecord | None:
        """The stored record of a key id, None for an unknown (or revoked) id."""
        digest = await self.client.hget(self._ids, key_id)
        if digest is None:
            return None
        digest = _text(digest)
        return decode_record(await self.client.hget(self._keys, digest), digest)

    async def create(
        self,
        key_id: str,
        roles: tuple[str, ...],
        tenant: str | None,
        *,
        settings: Settings | None = None,
        expires_at: float | None = None,
    ) -> str:
        """Mint a key; the clear key is returned once and never stored."""
        key, digest = _new_key()
        record = KeyRecord(key_id, digest, roles, tenant, settings, expires_at)
        if not await self.client.hsetnx(self._ids, key_id, digest):
            raise KeyExists(f"a key with id {key_id!r} exists")
        meta = {"created_at": time.time(), "rotated_at": None, "old_key_valid_until": None}
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys, digest, record.to_json())
            pipe.srem(self._revoked, key_id)
            pipe.hset(self._meta, key_id, orjson.dumps({**public(record), **meta}))
            pipe.hdel(self._prev, key_id)
            await pipe.execute()
        return key

    async def rotate(self, key_id: str, grace_s: float) -> tuple[str, float] | None:
        """A new secret for the same key (its id, so its budget, limits and ledger rows go
        on); the old one works `grace_s` more, then is refused as `key_rotated`. None for an
        unknown id. Returns the new key (shown once) and the old one's end."""
        record = await self.record_for(key_id)
        if record is None:
            return None
        now = time.time()
        valid_until = now + grace_s
        if record.expires_at is not None:
            valid_until = min(valid_until, record.expires_at)
        key, digest = _new_key()
        previous = await self._previous(key_id)
        kept = [(d, until) for d, until in previous if until > now][-(MAX_PREVIOUS - 1) :]
        dropped = [d for d, _ in previous if (d, _) not in kept]
        meta = await self._meta_of(key_id)
        meta.update(rotated_at=now, old_key_valid_until=valid_until)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys, digest, replace(record, digest=digest).to_json())
            if grace_s > 0:
                old = replace(record, expires_at=valid_until, rotated=True)
                pipe.hset(self._keys, record.digest, old.to_json())
                kept.append((record.digest, valid_until))
            else:
                dropped.append(record.digest)
            for gone in dropped:
                pipe.hdel(self._keys, gone)
            pipe.hset(self._ids, key_id, digest)
            pipe.hset(self._prev, key_id, orjson.dumps(kept))
            pipe.hset(self._meta, key_id, orjson.dumps(meta))
            await pipe.execute()
        self.store.forget(key_id)
        return key, valid_until

    async def revoke(self, key_id: str) -> None:
        """The key and every secret of it still in a grace period stop working."""
        digest = await self.client.hget(self._ids, key_id)
        previous = await self._previous(key_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(self._revoked, key_id)
            if digest is not None:
                pipe.hdel(self._keys, _text(digest))
                pipe.hdel(self._ids, key_id)
            for old, _ in previous:
                pipe.hdel(self._keys, old)
            pipe.hdel(self._prev, key_id)
            await pipe.execute()
        self.store.forget(key_id, revoked=True)

    async def listing(self) -> tuple[list[dict[str, Any]], set[str]]:
        """Every key the store has minted, revoked ones included (`revoked: true`), and the
        revoked ids (config keys' among them)."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._meta)
            pipe.smembers(self._revoked)
            metas, revoked = await pipe.execute()
        revoked_ids = {_text(r) for r in revoked}
        rows = []
        for key_id, raw in metas.items():
            try:
                row = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append({**row, "id": _text(key_id), "revoked": _text(key_id) in revoked_ids})
        return rows, revoked_ids

    async def _previous(self, key_id: str) -> list[tuple[str, float]]:
        raw = await self.client.hget(self._prev, key_id)
        try:
            return [(str(d), float(u)) for d, u in orjson.loads(raw)] if raw else []
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return []

    async def _meta_of(self, key_id: str) -> dict[str, Any]:
        raw = await self.client.hget(self._meta, key_id)
        try:
            meta = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            meta = {}
        return meta if isinstance(meta, dict) else {}


def public(record: KeyRecord) -> dict[str, Any]:
    """What an admin may see of a key: never the key, never its digest."""
    settings = record.settings or Settings()
    return {
        "id": record.id,
        "tenant": record.tenant,
        "roles": list(record.roles),
        "expires_at": record.expires_at,
        **settings.to_json(),
    }


__all__ = ["KeyExists", "KeyRegistry", "public"]
