"""What a request asks of the cache, and which requests the cache may answer at all."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgi_llm.errors import InvalidRequest
from asgi_llm.request import header
from asgi_llm.types import Scope

if TYPE_CHECKING:
    from asgi_llm.config.schema import Cache


@dataclass(frozen=True, slots=True)
class Directives:
    lookup: bool  # may be answered from the cache
    store: bool  # its answer may be stored
    ttl_s: float
    threshold: float | None  # per-request semantic threshold


def _number(scope: Scope, name: bytes, low: float, high: float) -> float | None:
    raw = header(scope, name)
    if raw is None:
        return None
    try:
        value = float(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        shown = name.decode()
        raise InvalidRequest(
            f"The {shown} header must be a number from {_plain(low)} to {_plain(high)}.",
            param=shown,
            code="invalid_cache_header",
        )
    return value


def _plain(number: float) -> str:
    """`315360000`, not `3.1536e+08` (what `:g` prints): a client reads this bound."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def read_directives(scope: Scope, settings: Cache) -> Directives:
    """`cache-control: no-cache` skips the lookup but stores; `no-store` does neither;
    `x-cache-ttl: SECONDS` sets the entry's lifetime (0 = do not store, capped at max_ttl_s);
    `x-cache-threshold` sets the semantic threshold for this request."""
    lookup = store = True
    control = header(scope, b"cache-control")
    if control is not None:
        for directive in control.lower().split(b","):
            name = directive.split(b"=", 1)[0].strip()
            if name == b"no-store":
                lookup = store = False
            elif name == b"no-cache":
                lookup = False
    ttl = _number(scope, b"x-cache-ttl", 0, 10 * 365 * 86400)
    if ttl is None:
        ttl = settings.ttl_s
    elif ttl == 0:
        store = False
    threshold = _number(scope, b"x-cache-threshold", 0.5, 1.0)
    return Directives(lookup, store, min(ttl, settings.max_ttl_s), threshold)


def deterministic_enough(payload: dict[str, Any], endpoint: str, settings: Cache) -> bool:
    """The configured rule for sampled answers: with `max_temperature` set, only requests at
    or below it (OpenAI's default temperature is 1), or with a `seed`, use the cache."""
    limit = settings.max_temperature
    if limit is None or endpoint == "embeddings":
        return True
    if payload.get("seed") is not None:
        return True
    temperature = payload.get("temperature")
    if temperature is None:
        temperature = 1.0
    return isinstance(temperature, (int, float)) and temperature <= limit


__all__ = ["Directives", "deterministic_enough", "read_directives"]
