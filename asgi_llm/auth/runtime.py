"""A principal's runtime settings (docs/teams.md): its store key's expiry, allow-list and
limits, and its team's, set on the Principal the rest of the stack reads (`may_use` for
the allow-lists, the limiter for `quotas`)."""

from __future__ import annotations

from dataclasses import replace

from asgi_llm.auth.keys import KeyRecord
from asgi_llm.auth.roles import RoleBook
from asgi_llm.auth.teams import TeamStore
from asgi_llm.context import Principal
from asgi_llm.errors import AuthenticationFailed

_REFUSALS = {
    "key_expired": "Invalid API key: it has expired.",
    "key_rotated": "Invalid API key: it was replaced by a rotation and its grace period is over.",
}


def key_principal(roles: RoleBook, record: KeyRecord, now: float) -> Principal:
    """The principal of a store key, with the key's own settings; 401 once it has expired
    or its rotation grace period is over (the reason goes to the audit log)."""
    reason = record.refusal(now)
    if reason is not None:
        raise AuthenticationFailed(_REFUSALS[reason], reason=reason)
    principal = roles.principal(record.id, tenant=record.tenant, roles=record.roles, kind="api_key")
    settings = record.settings
    if settings is not None:
        if settings.models is not None:
            principal.allow_lists = (settings.models,)
        if record.quota is not None:
            principal.quotas = (record.quota,)
    return principal


async def with_team(principal: Principal, teams: TeamStore) -> Principal:
    """The principal with the team of its tenant, if it has one: the team's allow-list and
    limits hold for every key (and token) of the tenant. Read from this replica's copy of the
    table. A new Principal: one from a user's `authenticate` hook may be shared."""
    assert principal.tenant is not None
    table = teams.current()
    if table is None:
        table = await teams.table()
    team = table.get(principal.tenant)
    if team is None:
        return principal
    models = team.settings.models
    return replace(
        principal,
        allow_lists=principal.allow_lists if models is None else (*principal.allow_lists, models),
        quotas=principal.quotas if team.quota is None else (*principal.quotas, team.quota),
    )


__all__ = ["key_principal", "with_team"]
