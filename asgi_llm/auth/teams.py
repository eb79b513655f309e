"""Teams: a tenant's runtime settings (budget, rates, allowed models, metadata), kept in the
key store's Redis so every replica sees them (docs/teams.md).

Layout: hash `<prefix>:teams` id -> team JSON; counter `<prefix>:teams_rev`, bumped by every
change. A replica keeps the whole table in memory and asks Redis only for the counter, at
most once per `REFRESH_S`, in the background: a request never waits on Redis for its team
(only the very first one of a process does, for the first table). So a change reaches every
replica within `REFRESH_S` (1 s) plus one round trip; the replica that made it, at once.

Redis down: the last table read stays in force (the outage is the key store's, logged once
by it). A process that never read one serves without team settings with `on_unavailable:
open`, and answers 503 with `closed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from asgi_llm.auth.quotas import Quota, Settings
from asgi_llm.errors import ServiceUnavailable

if TYPE_CHECKING:
    from asgi_llm.auth.keys import RedisKeyStore

REFRESH_S = 1.0


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    settings: Settings = Settings()
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)
    created_at: float = 0.0
    updated_at: float = 0.0
    # What the limiter counts for the team, worked out once (the request path reads it).
    quota: Quota | None = field(init=False, default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "quota", self.settings.quota("tenant", self.id))

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "settings": self.settings.to_json(),
                "metadata": self.metadata,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
            }
        )

    def public(self) -> dict[str, Any]:
        """What `GET /admin/teams` shows of it."""
        return {
            "id": self.id,
            **self.settings.to_json(),
            "metadata": self.metadata,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def decode_team(raw: bytes | None) -> Team | None:
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
        metadata = data.get("metadata") or {}
        return Team(
            str(data["id"]),
            Settings.from_json(data.get("settings")),
            metadata if isinstance(metadata, dict) else {},
            float(data.get("created_at") or 0),
            float(data.get("updated_at") or 0),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None  # a foreign or corrupt entry sets nothing


class TeamExists(ValueError):
    pass


class TeamStore:
    """The teams of one key store: admin reads and writes go to Redis; the request path
    reads `current()`, this replica's copy of the table (with its quotas worked out once)."""

    def __init__(self, store: RedisKeyStore, refresh_s: float = REFRESH_S) -> None:
        self.store = store
        self._hash = f"{store.prefix}:teams"
        self._rev_key = f"{store.prefix}:teams_rev"
        self.refresh_s = min(refresh_s, store.settings.cache_ttl_s)
        self._table: dict[str, Team] | None = None
        self._rev: bytes | None = None
        self._due = 0.0
        self._task: asyncio.Task[None] | None = None

    # -- the request path ------------------------------------------------------------------
    def current(self) -> dict[str, Team] | None:
        """The table as this replica knows it (None before the first read); a refresh is
        started in the background when one is due, never waited for."""
        if self._table is not None and time.monotonic() >= self._due:
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._refresh())
        return self._table

    async def table(self) -> dict[str, Team]:
        table = self.current()
        if table is not None:
            return table
        try:
            await self._refresh(raising=True)
        except ServiceUnavailable:
            if self.store.settings.on_unavailable == "closed":
                raise
            return {}
        return self._table or {}

    async def _refresh(self, *, raising: bool = False) -> None:
        self._due = time.monotonic() + self.refresh_s
        try:
            rev = await self.store.call(lambda client: client.get(self._rev_key))
            if rev == self._rev and self._table is not None:
                return
            rows = await self.store.call(lambda client: client.hgetall(self._hash))
        except ServiceUnavailable:
            if raising:
                raise
            return  # the last table stays in force; the key store logged the outage
        table = {}
        for raw in rows.values():
            team = decode_team(raw)
            if team is not None:
                table[team.id] = team
        self._table, self._rev = table, rev

    def _changed(self, team_id: str, team: Team | None) -> None:
        """A change made here is in force here at once; the counter tells the others."""
        if self._table is not None:
            if team is None:
                self._table.pop(team_id, None)
            else:
                self._table[team_id] = team
        self._rev = None

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    # -- the admin API (always Redis: an admin reads what is stored) ------------------------
    @property
    def _client(self) -> Any:
        return self.store.client

    async def get(self, team_id: str) -> Team | None:
        return decode_team(await self._client.hget(self._hash, team_id))

    async def all(self) -> list[Team]:
        rows = await self._client.hgetall(self._hash)
        teams = [team for team in map(decode_team, rows.values()) if team is not None]
        return sorted(teams, key=lambda team: team.id)

    async def create(self, team: Team) -> Team:
        if not await self._client.hsetnx(self._hash, team.id, team.to_json()):
            raise TeamExists(f"a team with id {team.id!r} exists")
        await self._client.incr(self._rev_key)
        self._changed(team.id, team)
        return team

    async def put(self, team: Team) -> Team:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(self._hash, team.id, team.to_json())
            pipe.incr(self._rev_key)
            await pipe.execute()
        self._changed(team.id, team)
        return team

    async def delete(self, team_id: str) -> bool:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hdel(self._hash, team_id)
            pipe.incr(self._rev_key)
            removed, _ = await pipe.execute()
        self._changed(team_id, None)
        return bool(removed)


__all__ = ["REFRESH_S", "Team", "TeamExists", "TeamStore", "decode_team"]
