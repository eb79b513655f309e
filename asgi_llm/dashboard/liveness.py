"""Whether the API key a session was opened with still opens anything: a key revoked,
expired or taken out of the config since the sign-in ends its sessions on their next call,
not at their expiry. Asked of the same key store AuthMiddleware reads.

A JWT or introspected token is not looked at again (it is not kept): its session lasts
until `admin.ui_session_ttl_s`.
"""

from __future__ import annotations

import time

from asgi_llm.auth.key_registry import KeyRegistry
from asgi_llm.auth.keys import KeyRecord, KeyStores
from asgi_llm.config.loader import Config
from asgi_llm.dashboard.session import Session
from asgi_llm.errors import ServiceUnavailable
from asgi_llm.redis_client import errors as redis_errors


async def key_still_valid(key_stores: KeyStores | None, config: Config, session: Session) -> bool:
    if session.kind != "api_key" or config.auth is None:
        return True
    configured = next((key for key in config.auth.api_keys if key.id == session.principal_id), None)
    store = key_stores.for_config(config) if key_stores is not None else None
    if configured is not None:
        if store is None:
            return True
        record = KeyRecord(configured.id, configured.key_sha256, configured.roles, configured.tenant)
        return await store.lookup(configured.key_sha256, record) is not None
    if store is None:
        return False  # neither in the config nor in a store any more
    try:
        stored = await KeyRegistry(store).record_for(session.principal_id)
    except redis_errors() as exc:
        raise ServiceUnavailable(
            "The key store is unavailable; try again shortly.", code="dependency_unavailable", retry_after=1
        ) from exc
    return stored is not None and stored.refusal(time.time()) is None


__all__ = ["key_still_valid"]
