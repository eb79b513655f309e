"""The stored form of one answer: JSON only, checked on the way back in.

An entry names the key it was written for, so a value under the wrong key (a foreign
writer, a corrupted or hand-edited Redis value, an old format) reads as a miss rather
than as someone else's answer. Nothing is ever unpickled (THREATS C5).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

FORMAT = 1


@dataclass(frozen=True, slots=True)
class Entry:
    digest: str
    endpoint: str
    response: dict[str, Any]
    created: float

    def encode(self) -> bytes:
        return orjson.dumps(
            {"v": FORMAT, "d": self.digest, "e": self.endpoint, "t": self.created, "r": self.response}
        )

    @property
    def usage(self) -> dict[str, Any] | None:
        usage = self.response.get("usage")
        return usage if isinstance(usage, dict) else None


def new_entry(digest: str, endpoint: str, response: dict[str, Any]) -> Entry:
    return Entry(digest, endpoint, response, time.time())


class BadEntry(ValueError):
    """A stored value that is not an entry for this key."""


def decode_entry(raw: bytes, digest: str, endpoint: str) -> Entry:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadEntry("not JSON") from None
    if not isinstance(data, dict) or data.get("v") != FORMAT:
        raise BadEntry("unknown format")
    if data.get("d") != digest or data.get("e") != endpoint:
        raise BadEntry("written for another key")
    response = data.get("r")
    if not isinstance(response, dict):
        raise BadEntry("no response object")
    listing = response.get("data" if endpoint == "embeddings" else "choices")
    if not isinstance(listing, list) or not all(isinstance(item, dict) for item in listing):
        raise BadEntry("malformed response object")
    created = data.get("t")
    return Entry(digest, endpoint, response, float(created) if isinstance(created, (int, float)) else 0.0)


__all__ = ["BadEntry", "Entry", "decode_entry", "new_entry"]
