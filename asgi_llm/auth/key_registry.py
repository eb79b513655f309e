"""The admin side of the key store: mint, list, update, rotate and revoke keys (docs/teams.md).

Beside RedisKeyStore's layout (keys by digest, ids, revoked ids) it keeps two hashes:
`<prefix>:key_meta` id -> what `GET /admin/keys` shows (never the key, never its digest),
kept after a revocation so the listing says `revoked`; and `<prefix>:key_prev` id -> the
digests of secrets replaced by a rotation and still in their grace period, so a revocation
ends them too. Every write of one change is one MULTI/EXEC.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import orjson

from asgi_llm.auth.keys import KeyRecord, RedisKeyStore, decode_record, hash_key
from asgi_llm.auth.quotas import Settings
from asgi_llm.redis_client import watch_error

MAX_PREVIOUS = 4  # secrets in grace per key; a fifth rotation ends the oldest grace at once
# What a key minted before the listing existed cannot tell.
UNKNOWN_HISTORY = {"created_at": None, "rotated_at": None, "old_key_valid_until": None}
ROTATE_TRIES = 8  # a watched change retried this often when another changes the key first
T = TypeVar("T")


class KeyExists(ValueError):
    pass


class KeyBusy(RuntimeError):
    """Other changes to the key store kept winning the race: try again."""


def _new_key() -> tuple[str, str]:
    key = "sk-" + secrets.token_urlsafe(32)
    return key, hash_key(key)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class KeyRegistry:
    def __init__(self, store: RedisKeyStore) -> None:
        self.store = store
        prefix = store.prefix
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
        unknown id. Returns the new key (shown once) and the old one's end.

        The key's entries are WATCHed: of two rotations (or a rotation and a revocation) at
        once, one is retried on what the other left, so no secret is ever left out of the
        id's records (which a revocation would then miss)."""
        return await self._watched(key_id, "rotation", lambda pipe: self._rotate(pipe, key_id, grace_s))

    async def _watched(
        self, key_id: str, verb: str, change: Callable[[Any], Awaitable[T | None]], *, revoked: bool = False
    ) -> T | None:
        """Run `change` (reads in the pipe's immediate mode, then `multi()` and the writes) with
        the key's entries WATCHed, again on what another change left if one came first. None
        (nothing written) when `change` finds no key."""
        for _ in range(ROTATE_TRIES):
            async with self.client.pipeline(transaction=True) as pipe:
                await pipe.watch(self._ids, self._prev)
                done = await change(pipe)
                if done is None:
                    return None
                try:
                    await pipe.execute()
                except watch_error():
                    continue
            self.store.forget(key_id, revoked=revoked)
            return done
        raise KeyBusy(f"key {key_id!r} kept changing during its {verb}")

    async def _watched_record(self, pipe: Any, key_id: str) -> KeyRecord | None:
        digest = await pipe.hget(self._ids, key_id)
        return decode_record(await pipe.hget(self._keys, _text(digest)), _text(digest)) if digest else None

    async def _rotate(self, pipe: Any, key_id: str, grace_s: float) -> tuple[str, float] | None:
        """Read the key (the pipe is in immediate mode while watching), then queue the writes."""
        record = await self._watched_record(pipe, key_id)
        if record is None:
            return None
        now = time.time()
        valid_until = now + grace_s
        if record.expires_at is not None:
            valid_until = min(valid_until, record.expires_at)
        previous = _pairs(await pipe.hget(self._prev, key_id))
        kept = [(d, until) for d, until in previous if until > now][-(MAX_PREVIOUS - 1) :]
        dropped = [d for d, until in previous if (d, until) not in kept]
        meta = _object(await pipe.hget(self._meta, key_id))
        meta.update(rotated_at=now, old_key_valid_until=valid_until)
        key, new_digest = _new_key()
        pipe.multi()
        pipe.hset(self._keys, new_digest, replace(record, digest=new_digest).to_json())
        if grace_s > 0:
            old = replace(record, expires_at=valid_until, rotated=True)
            pipe.hset(self._keys, record.digest, old.to_json())
            kept.append((record.digest, valid_until))
        else:
            dropped.append(record.digest)
        for gone in dropped:
            pipe.hdel(self._keys, gone)
        pipe.hset(self._ids, key_id, new_digest)
        pipe.hset(self._prev, key_id, orjson.dumps(kept))
        pipe.hset(self._meta, key_id, orjson.dumps(meta))
        return key, valid_until

    async def update(
        self, key_id: str, settings: Settings | None, expires_at: float | None
    ) -> KeyRecord | None:
        """A key's settings and expiry replaced (`PATCH /admin/keys/{id}`), its secret kept;
        its secrets still in a grace period take the new settings too (their grace end stays).
        None for an unknown (or revoked) id. Watched as a rotation is."""

        async def change(pipe: Any) -> KeyRecord | None:
            record = await self._watched_record(pipe, key_id)
            if record is None:
                return None
            updated = replace(record, settings=settings, expires_at=expires_at)
            previous = _pairs(await pipe.hget(self._prev, key_id))
            olds = await pipe.hmget(self._keys, [d for d, _ in previous]) if previous else []
            meta = _object(await pipe.hget(self._meta, key_id))
            pipe.multi()
            pipe.hset(self._keys, record.digest, updated.to_json())
            for (old_digest, _), old_raw in zip(previous, olds, strict=True):
                old = decode_record(old_raw, old_digest)
                if old is not None:
                    pipe.hset(self._keys, old_digest, replace(old, settings=settings).to_json())
            pipe.hset(self._meta, key_id, orjson.dumps({**meta, **public(updated)}))
            return updated

        return await self._watched(key_id, "update", change)

    async def revoke(self, key_id: str) -> None:
        """The key and every secret of it still in a grace period stop working (watched as a
        rotation is, so a rotation at the same moment cannot leave a secret behind)."""

        async def change(pipe: Any) -> bool:
            digest = await pipe.hget(self._ids, key_id)
            previous = _pairs(await pipe.hget(self._prev, key_id))
            pipe.multi()
            pipe.sadd(self._revoked, key_id)
            if digest is not None:
                pipe.hdel(self._keys, _text(digest))
                pipe.hdel(self._ids, key_id)
            for old, _ in previous:
                pipe.hdel(self._keys, old)
            pipe.hdel(self._prev, key_id)
            return True

        await self._watched(key_id, "revocation", change, revoked=True)

    async def listing(self) -> tuple[list[dict[str, Any]], set[str]]:
        """Every key the store has minted, revoked ones included (`revoked: true`), and the
        revoked ids (config keys' among them). A key minted before the listing existed (no
        `key_meta` entry) is shown from its record, with `created_at: null`."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._meta)
            pipe.hgetall(self._ids)
            pipe.smembers(self._revoked)
            metas, ids, revoked = await pipe.execute()
        revoked_ids = {_text(r) for r in revoked}
        rows = {_text(key_id): _object(raw) for key_id, raw in metas.items()}
        older = {_text(key_id): _text(digest) for key_id, digest in ids.items() if _text(key_id) not in rows}
        if older:
            records = await self.client.hmget(self._keys, list(older.values()))
            for (key_id, digest), raw in zip(older.items(), records, strict=True):
                record = decode_record(raw, digest)
                if record is not None:
                    rows[key_id] = {**public(record), **UNKNOWN_HISTORY}
        return [
            {**row, "id": key_id, "revoked": key_id in revoked_ids} for key_id, row in rows.items()
        ], revoked_ids


def _pairs(raw: Any) -> list[tuple[str, float]]:
    """The (digest, valid until) of a key's secrets in grace, as stored."""
    try:
        return [(str(d), float(u)) for d, u in orjson.loads(raw)] if raw else []
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return []


def _object(raw: Any) -> dict[str, Any]:
    try:
        value = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        value = {}
    return value if isinstance(value, dict) else {}


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


__all__ = ["UNKNOWN_HISTORY", "KeyBusy", "KeyExists", "KeyRegistry", "public"]
