"""The admin API's teams: create, list, read, update, delete (docs/teams.md).

A team is a tenant: its budget, rates and allowed models hold for every key (and token) of
the tenant. Only an admin without a tenant creates or deletes teams and sets what they may
spend or use; an admin with a tenant reads its own team and changes its `metadata` only
(it could otherwise raise its own budget). Any other team is 403 to it, whether it exists or
not.
"""

from __future__ import annotations

import re
import time
from typing import Any, Protocol

import orjson

from asgi_llm.admin.keys import Action, StoreFor, check_fields, needs_limits, store_errors
from asgi_llm.admin.paging import listing_query, paged
from asgi_llm.auth.key_registry import KeyRegistry
from asgi_llm.auth.quotas import SETTING_FIELDS, Settings, parse_settings
from asgi_llm.auth.teams import Team, TeamExists, TeamStore
from asgi_llm.config.loader import Config
from asgi_llm.context import LLMContext, Principal
from asgi_llm.errors import InvalidRequest, PermissionDenied, ServiceUnavailable
from asgi_llm.types import Scope

TEAM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,63}")
MAX_METADATA_BYTES = 4096
TEAM_FIELDS = frozenset({"id", "metadata", *SETTING_FIELDS})


def _team_id(value: Any) -> str:
    if not isinstance(value, str) or not TEAM_ID.fullmatch(value):
        raise InvalidRequest(
            "'id' must be 1 to 64 letters, digits or _ . : @ - (starting with a letter or digit).",
            param="id",
        )
    return value


def _metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest("'metadata' must be an object.", param="metadata")
    if len(orjson.dumps(value)) > MAX_METADATA_BYTES:
        raise InvalidRequest(
            f"'metadata' must be at most {MAX_METADATA_BYTES} bytes of JSON.", param="metadata"
        )
    return value


class SpendReader(Protocol):
    """Where a team's spend is counted (RateLimitMiddleware is one)."""

    async def tenant_spend(self, period: str) -> dict[str, float] | None: ...


class TeamActions:
    """The team routes. With a `spend` reader, a team shows `spent_usd` in its current period
    whenever a budget counts it (its own, or the config's per-tenant one of that period)."""

    def __init__(self, store_for: StoreFor, spend: SpendReader | None = None) -> None:
        self._store_for = store_for
        self._spend = spend

    def actions(self) -> dict[str, Action]:
        return {
            "admin.teams.create": self.create,
            "admin.teams.list": self.listing,
            "admin.teams.get": self.get,
            "admin.teams.update": self.update,
            "admin.teams.delete": self.delete,
        }

    def _teams(self, ctx: LLMContext) -> TeamStore:
        return self._store_for(ctx).teams

    async def create(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        teams = self._teams(ctx)
        payload = ctx.payload
        check_fields(payload, TEAM_FIELDS)
        team_id = _team_id(payload.get("id"))
        settings = Settings(**parse_settings(payload, partial=False))
        metadata = _metadata(payload.get("metadata"))
        _only_global(principal, "create teams")
        needs_limits(ctx.config, settings)
        now = time.time()
        with store_errors():
            try:
                team = await teams.create(Team(team_id, settings, metadata, now, now))
            except TeamExists as exc:
                raise InvalidRequest(str(exc), status=409, code="team_exists") from None
        return 201, (await self._shown(ctx.config, [team]))[0]

    async def listing(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        """Paged by id (admin/paging.py): `spent_usd` is read for the page's teams only."""
        query = listing_query(scope, frozenset())
        with store_errors():
            found = await self._teams(ctx).all()
        if principal.tenant is not None:
            found = [team for team in found if team.id == principal.tenant]
        page = paged([{"id": team.id, "team": team} for team in found], query)
        page["data"] = await self._shown(ctx.config, [row["team"] for row in page["data"]])
        return 200, page

    async def get(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        team_id = self._visible(principal, ctx.model)
        with store_errors():
            team = await self._teams(ctx).get(team_id)
        return 200, (await self._shown(ctx.config, [_found(team, team_id)]))[0]

    async def update(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        team_id = self._visible(principal, ctx.model)
        payload = ctx.payload
        check_fields(payload, TEAM_FIELDS)
        if "id" in payload and payload["id"] != team_id:
            raise InvalidRequest("A team's 'id' cannot change.", param="id")
        changes = parse_settings(payload, partial=True)
        if principal.tenant is not None and changes:
            raise PermissionDenied(
                "Only an admin without a tenant sets a team's budget, limits and models.",
                param=next(iter(changes)),
                code="grant_not_allowed",
            )
        teams = self._teams(ctx)
        with store_errors():
            team = _found(await teams.get(team_id), team_id)
            needs_limits(ctx.config, Settings().updated(changes))  # only what this change sets
            settings = team.settings.updated(changes)
            metadata = _metadata(payload["metadata"]) if "metadata" in payload else team.metadata
            updated = Team(team_id, settings, metadata, team.created_at, time.time())
            await teams.put(updated)
        return 200, (await self._shown(ctx.config, [updated]))[0]

    async def delete(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        """Refused (409 `team_has_keys`) while a live key (not revoked, not expired; store or
        config) belongs to the team: its keys would lose the team's limits."""
        team_id = self._visible(principal, ctx.model)
        _only_global(principal, "delete teams")
        store = self._store_for(ctx)
        with store_errors():
            _found(await store.teams.get(team_id), team_id)
            live = await _live_keys(ctx.config, KeyRegistry(store), team_id)
            if live:
                shown = ", ".join(live[:5]) + (", ..." if len(live) > 5 else "")
                raise InvalidRequest(
                    f"Team {team_id!r} still has {len(live)} live key(s) ({shown}): revoke them first.",
                    status=409,
                    code="team_has_keys",
                )
            await store.teams.delete(team_id)
        return 200, {"deleted": team_id}

    async def _shown(self, config: Config, teams: list[Team]) -> list[dict[str, Any]]:
        """The teams as the API shows them, with `spent_usd` where a budget counts it (left
        out when the limiter's store does not answer: a spend figure is never guessed)."""
        shown = [team.public() for team in teams]
        if self._spend is None or config.limits is None:
            return shown
        per_tenant = {b.period for b in config.limits.budgets if b.per == "tenant"}
        spent: dict[str, dict[str, float] | None] = {}
        for team, row in zip(teams, shown, strict=True):
            period = team.settings.budget_period
            if team.settings.budget_usd is None and period not in per_tenant:
                continue
            if period not in spent:
                try:
                    spent[period] = await self._spend.tenant_spend(period)
                except ServiceUnavailable:
                    spent[period] = None
            figures = spent[period]
            if figures is not None:
                row["spent_usd"] = figures.get(team.id, 0.0)
        return shown

    @staticmethod
    def _visible(principal: Principal, team_id: str | None) -> str:
        team_id = _team_id(team_id)
        if principal.tenant is not None and principal.tenant != team_id:
            raise PermissionDenied(
                "You can administer your own tenant's team only.", code="grant_not_allowed"
            )
        return team_id


def _only_global(principal: Principal, what: str) -> None:
    if principal.tenant is not None:
        raise PermissionDenied(f"Only an admin without a tenant can {what}.", code="grant_not_allowed")


def _found(team: Team | None, team_id: str) -> Team:
    if team is None:
        raise InvalidRequest(f"No team {team_id!r}.", status=404, code="team_not_found")
    return team


async def _live_keys(config: Config, registry: KeyRegistry, team_id: str) -> list[str]:
    rows, revoked = await registry.listing()
    now = time.time()
    live = [
        row["id"]
        for row in rows
        if row.get("tenant") == team_id
        and not row["revoked"]
        and (row.get("expires_at") is None or row["expires_at"] > now)
    ]
    for key in config.auth.api_keys if config.auth else ():
        if key.tenant == team_id and key.id not in revoked:
            live.append(key.id)
    return sorted(live)


__all__ = ["TeamActions"]
