"""The admin API's keys: mint, list, update, rotate, revoke (docs/teams.md).

An admin with a tenant sees and changes only its tenant's keys; nobody mints, rotates or
revokes a key whose roles grant more than their own. Each action runs inside
AdminMiddleware, which audits it before and after.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from asgi_llm.admin.paging import flag, listing_query, paged
from asgi_llm.auth.key_registry import UNKNOWN_HISTORY, KeyBusy, KeyExists, KeyRegistry, public
from asgi_llm.auth.keys import KeyRecord, RedisKeyStore
from asgi_llm.auth.quotas import SETTING_FIELDS, Settings, parse_settings
from asgi_llm.config.loader import Config
from asgi_llm.context import LLMContext, Principal
from asgi_llm.errors import InvalidRequest, PermissionDenied, ServiceUnavailable
from asgi_llm.redis_client import errors as redis_errors
from asgi_llm.types import Scope

Action = Callable[[LLMContext, Scope, Principal], Awaitable[tuple[int, Any]]]
StoreFor = Callable[[LLMContext], RedisKeyStore]

MINT_FIELDS = frozenset({"id", "roles", "tenant", "expires_at", "ttl_s", *SETTING_FIELDS})
UPDATE_FIELDS = frozenset({"expires_at", "ttl_s", *SETTING_FIELDS})
MAX_TTL_S = 10 * 366 * 86400
MAX_GRACE_S = 7 * 86400
DEFAULT_GRACE_S = 3600
# A config key in the listing: made by the config file, rotated there too.
_CONFIG_KEY = {**UNKNOWN_HISTORY, "source": "config"}


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Redis failing under an admin action: 503, never a half-told success; a key that other
    changes kept changing under a rotation or revocation: 409, try again."""
    try:
        yield
    except KeyBusy as exc:
        raise InvalidRequest(str(exc), status=409, code="key_busy") from None
    except redis_errors() as exc:
        raise ServiceUnavailable(
            "The key store is unavailable; try again shortly.", code="dependency_unavailable", retry_after=1
        ) from exc


def check_fields(payload: dict[str, Any], allowed: frozenset[str]) -> None:
    for name in payload:
        if name not in allowed:
            raise InvalidRequest(f"Unknown field {name!r}.", param=name, code="unknown_parameter")


def needs_limits(config: Config, settings: Settings) -> None:
    """A budget or a rate is counted by the limiter: without a `limits` section nothing would
    count it, so it is refused rather than silently ignored."""
    if settings.counted and config.limits is None:
        field = next(f for f in ("budget_usd", "rpm", "tpm") if getattr(settings, f) is not None)
        raise InvalidRequest(
            "Budgets and rate limits need a `limits` section in the config (its storage counts them).",
            param=field,
            code="limits_not_configured",
        )


def check_grants(config: Config, principal: Principal, roles: list[str]) -> None:
    """A principal can never mint a key that holds more than it holds itself."""
    defined = config.auth.roles if config.auth else {}
    for name in roles:
        role = defined.get(name)
        if role is None:
            raise InvalidRequest(f"Unknown role {name!r}.", param="roles")
        wider = (
            (role.admin and not principal.admin)
            or ("*" not in principal.models and not set(role.models) <= set(principal.models))
            or ("*" not in principal.endpoints and not set(role.endpoints) <= set(principal.endpoints))
        )
        if wider:
            raise PermissionDenied(f"Role {name!r} grants more than you hold.", code="grant_not_allowed")


def parse_expiry(payload: dict[str, Any], now: float) -> float | None:
    """`expires_at` (ISO 8601, UTC unless it says otherwise, or epoch seconds) or `ttl_s`."""
    at, ttl = payload.get("expires_at"), payload.get("ttl_s")
    if at is not None and ttl is not None:
        raise InvalidRequest("Give 'expires_at' or 'ttl_s', not both.", param="ttl_s")
    if ttl is not None:
        if type(ttl) not in (int, float) or not math.isfinite(ttl) or not 0 < ttl <= MAX_TTL_S:
            raise InvalidRequest(f"'ttl_s' must be a number of seconds from 1 to {MAX_TTL_S}.", param="ttl_s")
        return now + float(ttl)
    if at is None:
        return None
    if type(at) in (int, float) and math.isfinite(at):
        when = float(at)
    elif isinstance(at, str) and len(at) <= 64:
        try:
            parsed = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequest(
                "'expires_at' must be an ISO 8601 time or epoch seconds.", param="expires_at"
            ) from None
        when = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    else:
        raise InvalidRequest("'expires_at' must be an ISO 8601 time or epoch seconds.", param="expires_at")
    if not now < when <= now + MAX_TTL_S:
        raise InvalidRequest("'expires_at' must be in the future (at most 10 years).", param="expires_at")
    return when


def _key_id(value: Any, param: str = "id") -> str:
    if not isinstance(value, str) or not value or len(value) > 128:
        raise InvalidRequest(f"'{param}' must be a non-empty string of at most 128 characters.", param=param)
    return value


def config_record(config: Config, key_id: str) -> KeyRecord | None:
    for key in config.auth.api_keys if config.auth else ():
        if key.id == key_id:
            return KeyRecord(key.id, key.key_sha256, key.roles, key.tenant)
    return None


class KeyActions:
    """The key routes, each `(ctx, scope, principal) -> (status, body)`."""

    def __init__(self, store_for: StoreFor) -> None:
        self._store_for = store_for

    def actions(self) -> dict[str, Action]:
        return {
            "admin.keys": self.mint,
            "admin.keys.list": self.listing,
            "admin.keys.update": self.update,
            "admin.keys.rotate": self.rotate,
            "admin.keys.revoke": self.revoke,
            "admin.keys.delete": self.delete,
        }

    def registry(self, ctx: LLMContext) -> KeyRegistry:
        return KeyRegistry(self._store_for(ctx))

    async def mint(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        registry = self.registry(ctx)
        payload = ctx.payload
        check_fields(payload, MINT_FIELDS)
        key_id = _key_id(payload.get("id"))
        roles, tenant = payload.get("roles", []), payload.get("tenant")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidRequest("'roles' must be an array of role names.", param="roles")
        if tenant is not None and not isinstance(tenant, str):
            raise InvalidRequest("'tenant' must be a string.", param="tenant")
        given = any(name in payload for name in SETTING_FIELDS)
        settings = Settings(**parse_settings(payload, partial=False)) if given else None
        expires_at = parse_expiry(payload, time.time())
        check_grants(ctx.config, principal, roles)
        if principal.tenant is not None:  # a tenant's admin mints keys of its own tenant only
            if tenant not in (None, principal.tenant):
                raise PermissionDenied(
                    "You can mint keys for your own tenant only.", code="grant_not_allowed"
                )
            tenant = principal.tenant
        if settings is not None:
            needs_limits(ctx.config, settings)
        with store_errors():
            try:
                key = await registry.create(
                    key_id, tuple(roles), tenant, settings=settings, expires_at=expires_at
                )
            except KeyExists as exc:
                raise InvalidRequest(str(exc), status=409, code="key_exists") from None
        record = KeyRecord(key_id, "", tuple(roles), tenant, settings, expires_at)
        return 201, {**public(record), "key": key}

    async def listing(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        """Paged by id (admin/paging.py); `tenant=` and `revoked=true|false` filter it
        (without `revoked`, revoked keys are listed too, `revoked: true`)."""
        registry = self.registry(ctx)
        query = listing_query(scope, frozenset({"tenant", "revoked"}))
        wanted = query.get("tenant") or None
        revoked_wanted = flag(query, "revoked")
        if principal.tenant is not None:
            wanted = principal.tenant  # a tenant's admin sees its own tenant's keys only
        with store_errors():
            stored, revoked = await registry.listing()
        rows = [{**row, "source": "store"} for row in stored]
        ids = {row["id"] for row in rows}
        for key in ctx.config.auth.api_keys if ctx.config.auth else ():
            if key.id not in ids:
                row = public(KeyRecord(key.id, "", key.roles, key.tenant))
                rows.append({**row, **_CONFIG_KEY, "revoked": key.id in revoked})
        if wanted is not None:
            rows = [row for row in rows if row.get("tenant") == wanted]
        if revoked_wanted is not None:
            rows = [row for row in rows if row["revoked"] is revoked_wanted]
        return 200, paged(rows, query)

    async def update(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        """`PATCH /admin/keys/{id}`: the settings minting takes (absent: kept, `null`:
        cleared; `expires_at`/`ttl_s` set the expiry, `expires_at: null` ends it). Only the
        key is changed, never its secret; the answer never shows either."""
        registry = self.registry(ctx)
        key_id = _key_id(ctx.model)
        payload = ctx.payload
        check_fields(payload, UPDATE_FIELDS)
        changes = parse_settings(payload, partial=True)
        expiry_given = "expires_at" in payload or "ttl_s" in payload
        expires_at = parse_expiry(payload, time.time()) if expiry_given else None
        if config_record(ctx.config, key_id) is not None:
            raise InvalidRequest(
                "A config key's settings are changed in the config file, not here.",
                status=409,
                code="config_key",
            )
        if principal.tenant is not None and principal.id == key_id and (changes or expiry_given):
            raise PermissionDenied(  # as with its team: it could raise its own budget
                "A tenant's admin cannot change the key it is using.", code="grant_not_allowed"
            )
        needs_limits(ctx.config, Settings().updated(changes))  # only what this change sets
        with store_errors():
            target = await registry.record_for(key_id)
            if target is None:
                raise InvalidRequest(f"No key {key_id!r}.", status=404, code="key_not_found")
            self._may_change(ctx.config, principal, target, "change")
            settings = (target.settings or Settings()).updated(changes)
            kept = target.expires_at if not expiry_given else expires_at
            updated = await registry.update(key_id, settings, kept)
        if updated is None:
            raise InvalidRequest(f"No key {key_id!r}.", status=404, code="key_not_found")
        return 200, {**public(updated), "source": "store", "revoked": False}

    async def rotate(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        registry = self.registry(ctx)
        key_id = _key_id(ctx.model)
        check_fields(ctx.payload, frozenset({"grace_s"}))
        grace = ctx.payload.get("grace_s", DEFAULT_GRACE_S)
        if type(grace) not in (int, float) or not math.isfinite(grace) or not 0 <= grace <= MAX_GRACE_S:
            raise InvalidRequest(
                f"'grace_s' must be a number of seconds from 0 to {MAX_GRACE_S}.", param="grace_s"
            )
        if config_record(ctx.config, key_id) is not None:
            raise InvalidRequest(
                "A config key is rotated in the config file (a new key_sha256), not here.",
                status=409,
                code="config_key",
            )
        with store_errors():
            target = await registry.record_for(key_id)
            if target is None:
                raise InvalidRequest(f"No key {key_id!r}.", status=404, code="key_not_found")
            self._may_change(ctx.config, principal, target, "rotate")
            rotated = await registry.rotate(key_id, float(grace))
        if rotated is None:
            raise InvalidRequest(f"No key {key_id!r}.", status=404, code="key_not_found")
        key, valid_until = rotated
        return 201, {**public(target), "key": key, "old_key_valid_until": valid_until}

    async def revoke(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        return await self._revoke(ctx, principal, _key_id(ctx.payload.get("id")))

    async def delete(self, ctx: LLMContext, scope: Scope, principal: Principal) -> tuple[int, Any]:
        """`DELETE /admin/keys/{id}`: a revocation (the listing keeps it, `revoked: true`)."""
        return await self._revoke(ctx, principal, _key_id(ctx.model))

    async def _revoke(self, ctx: LLMContext, principal: Principal, key_id: str) -> tuple[int, Any]:
        registry = self.registry(ctx)
        with store_errors():
            target = config_record(ctx.config, key_id) or await registry.record_for(key_id)
            if target is not None:  # nobody revokes a key that holds more than they do
                self._may_change(ctx.config, principal, target, "revoke")
            await registry.revoke(key_id)
        return 200, {"revoked": key_id}

    @staticmethod
    def _may_change(config: Config, principal: Principal, target: KeyRecord, verb: str) -> None:
        check_grants(config, principal, list(target.roles))
        if principal.tenant is not None and target.tenant != principal.tenant:
            raise PermissionDenied(f"You can {verb} keys of your own tenant only.", code="grant_not_allowed")


__all__ = ["KeyActions", "check_fields", "check_grants", "config_record", "needs_limits", "store_errors"]
