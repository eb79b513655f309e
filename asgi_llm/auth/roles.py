"""RBAC: roles grant model patterns, endpoints and admin; a principal holds their union."""

from __future__ import annotations

from collections.abc import Iterable

from asgi_llm.config.schema import Role
from asgi_llm.context import Principal

GRANTS_MAX = 1024  # role combinations remembered per book; past it the memo restarts


class RoleBook:
    def __init__(self, roles: dict[str, Role]) -> None:
        self._roles = roles
        # Role names as given -> (the known ones, admin, models, endpoints): the union is the
        # same for every request of a key (a book lives as long as its config snapshot).
        self._grants: dict[
            tuple[str, ...], tuple[tuple[str, ...], bool, tuple[str, ...], tuple[str, ...]]
        ] = {}

    def known(self, names: Iterable[str]) -> tuple[str, ...]:
        """Only roles the config defines: a token can't invent one."""
        return tuple(dict.fromkeys(name for name in names if name in self._roles))

    def principal(
        self, principal_id: str, *, tenant: str | None, roles: Iterable[str], kind: str
    ) -> Principal:
        given = roles if isinstance(roles, tuple) else tuple(roles)
        grants = self._grants.get(given)
        if grants is None:
            if len(self._grants) >= GRANTS_MAX:
                self._grants.clear()
            grants = self._grants[given] = self._union(given)
        held, admin, models, endpoints = grants
        # No role, no grant: an identity with no mapping is refused, never allowed by default.
        return Principal(principal_id, tenant, held, kind, admin, models, endpoints)

    def _union(
        self, roles: tuple[str, ...]
    ) -> tuple[tuple[str, ...], bool, tuple[str, ...], tuple[str, ...]]:
        held = self.known(roles)
        models: dict[str, None] = {}
        endpoints: dict[str, None] = {}
        admin = False
        for name in held:
            role = self._roles[name]
            models.update(dict.fromkeys(role.models))
            endpoints.update(dict.fromkeys(role.endpoints))
            admin = admin or role.admin
        return held, admin, tuple(models), tuple(endpoints)


def roles_from_claim(value: object) -> list[str]:
    """A roles claim as a list of strings (JSON array, or a space/comma separated string)."""
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []
