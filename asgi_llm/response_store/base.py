"""What a stored response is, the interface every store implements, and how it fails.

A record is a whole turn of a Responses API conversation: the answer as the client saw it and
every input item up to it, so a later `previous_response_id` can be replayed on any provider.
Records are JSON on the wire and at rest: a store never unpickles, and an entry that does not
decode as a record of this version (corrupt, foreign, older) is treated as missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from asgi_llm.errors import ServiceUnavailable

RECORD_VERSION = 1

# OpenAI's ids are `resp_` + hex; other providers' and our own stay within this alphabet.
# Ids arrive from clients on GET and DELETE, so anything else is "not found", never a key.
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def valid_id(response_id: object) -> bool:
    """True for an id a store may look up (`[A-Za-z0-9_-]{1,128}`)."""
    return isinstance(response_id, str) and _ID.fullmatch(response_id) is not None


class ResponseStoreUnavailable(ServiceUnavailable):
    """The shared store (Redis) did not answer in time or refused: a 503 the client may retry.

    The message is the client's; what went wrong (never the URL) is in `reason` for the log.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(
            "The response store is unavailable; try again shortly.",
            code="dependency_unavailable",
            retry_after=1,
        )
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One stored turn. `namespace` is the tenant scope (`tenant:<t>`, `key:<id>`, `global`):
    a record is only ever visible to a lookup in its own namespace."""

    id: str
    namespace: str
    created_at: int
    response: dict[str, Any]  # the Responses object as returned to the client
    input_items: list[dict[str, Any]]  # the conversation's input items up to this turn
    output_items: list[dict[str, Any]]
    deployment: str | None = None
    upstream_id: str | None = None  # the upstream's own id when served natively, else None

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "v": RECORD_VERSION,
                "id": self.id,
                "namespace": self.namespace,
                "created_at": self.created_at,
                "response": self.response,
                "input_items": self.input_items,
                "output_items": self.output_items,
                "deployment": self.deployment,
                "upstream_id": self.upstream_id,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes) -> StoredResponse:
        """The record `to_json` wrote; ValueError for anything else (stores read that as missing)."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ValueError("not JSON") from None
        if not isinstance(data, dict) or data.get("v") != RECORD_VERSION:
            raise ValueError("not a stored response of this version")
        record = cls(
            id=_typed(data, "id", str),
            namespace=_typed(data, "namespace", str),
            created_at=_typed(data, "created_at", int),
            response=_typed(data, "response", dict),
            input_items=_items(data, "input_items"),
            output_items=_items(data, "output_items"),
            deployment=_optional_str(data, "deployment"),
            upstream_id=_optional_str(data, "upstream_id"),
        )
        if not valid_id(record.id) or not record.namespace:
            raise ValueError("invalid id or namespace")
        return record


def _typed(data: dict[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):  # bool is an int
        raise ValueError(f"{name}: expected {kind.__name__}")
    return value


def _items(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = _typed(data, name, list)
    if not all(isinstance(item, dict) for item in value):
        raise ValueError(f"{name}: expected a list of objects")
    return value  # type: ignore[no-any-return]


def _optional_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name}: expected a string or null")
    return value


def check_record(record: StoredResponse, ttl_s: float) -> None:
    """What `put` refuses: records with ids no `get` could find, and lifetimes that are none.
    Both are the gateway's own mistakes, so they raise rather than vanish."""
    if not valid_id(record.id):
        raise ValueError(f"invalid response id {record.id!r}")
    if not record.namespace:
        raise ValueError("a stored response needs a namespace")
    if not ttl_s > 0:
        raise ValueError(f"ttl_s must be positive, not {ttl_s!r}")


class ResponseStore(Protocol):
    """Stored responses by (namespace, id), each with its own lifetime.

    `get` and `delete` take the id as the client sent it: an id that is not valid, or that
    lives in another namespace, is simply not there (None / False), so the caller answers 404
    for both without telling them apart. Backend trouble raises ResponseStoreUnavailable.
    """

    async def put(self, record: StoredResponse, ttl_s: float) -> None: ...

    async def get(self, namespace: str, response_id: str) -> StoredResponse | None: ...

    async def delete(self, namespace: str, response_id: str) -> bool: ...

    async def aclose(self) -> None: ...


__all__ = [
    "RECORD_VERSION",
    "ResponseStore",
    "ResponseStoreUnavailable",
    "StoredResponse",
    "check_record",
    "valid_id",
]
