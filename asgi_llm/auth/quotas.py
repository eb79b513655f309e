"""Runtime settings of a key or a team: a budget, rates and allowed models set through the
admin API (docs/teams.md), kept in the key store next to the keys.

Settings only ever add limits: the config's rules and budgets hold for everyone, and a
request must pass those and its key's and its team's own. A `Quota` is what the limiter
counts (budget, requests and tokens per minute of one key or one tenant); `models` is an
allow-list the principal carries (`Principal.allow_lists`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from asgi_llm.context import Quota
from asgi_llm.errors import InvalidRequest

PERIODS = ("day", "week", "month")  # as `limits.budgets[].period`
MAX_USD = 1e9
MAX_RATE = 1_000_000_000
MAX_MODELS = 256
SETTING_FIELDS = ("budget_usd", "budget_period", "rpm", "tpm", "models")


@dataclass(frozen=True, slots=True)
class Settings:
    budget_usd: float | None = None
    budget_period: str = "month"
    rpm: int | None = None
    tpm: int | None = None
    models: tuple[str, ...] | None = None  # globs over model names and aliases

    def quota(self, per: Literal["key", "tenant"], who: str) -> Quota | None:
        if self.budget_usd is None and self.rpm is None and self.tpm is None:
            return None
        return Quota(per, who, self.budget_usd, self.budget_period, self.rpm, self.tpm)

    @property
    def counted(self) -> bool:
        """Whether the limiter has anything to count (a budget or a rate)."""
        return self.budget_usd is not None or self.rpm is not None or self.tpm is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "budget_usd": self.budget_usd,
            "budget_period": self.budget_period,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "models": list(self.models) if self.models is not None else None,
        }

    @classmethod
    def from_json(cls, data: Any) -> Settings:
        """Settings as stored; anything malformed is dropped (a foreign entry grants nothing
        and, for a limit, the config's own limits still hold)."""
        if not isinstance(data, dict):
            return cls()
        try:
            return cls(**parse_settings(data, partial=True))
        except InvalidRequest:
            return cls()

    def updated(self, changes: dict[str, Any]) -> Settings:
        return Settings(**{**{f: getattr(self, f) for f in SETTING_FIELDS}, **changes})


def parse_settings(payload: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """The settings fields of an admin request, checked (400 naming the field otherwise).
    `null` clears a setting; with `partial`, absent fields are left out of the answer."""
    out: dict[str, Any] = {}
    if "budget_usd" in payload:
        out["budget_usd"] = _usd(payload["budget_usd"])
    if "budget_period" in payload or not partial:
        period = payload.get("budget_period", "month")
        if period not in PERIODS:
            raise InvalidRequest(
                f"'budget_period' must be one of {', '.join(PERIODS)}.", param="budget_period"
            )
        out["budget_period"] = period
    for name in ("rpm", "tpm"):
        if name in payload:
            out[name] = _rate(name, payload[name])
    if "models" in payload:
        out["models"] = _models(payload["models"])
    return out


def _usd(value: Any) -> float | None:
    if value is None:
        return None
    if type(value) not in (int, float) or not math.isfinite(value) or not 0 < value <= MAX_USD:
        raise InvalidRequest(
            f"'budget_usd' must be a number above 0 and at most {MAX_USD:.0f}.", param="budget_usd"
        )
    return float(value)


def _rate(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 1 <= value <= MAX_RATE:
        raise InvalidRequest(f"'{name}' must be an integer from 1 to {MAX_RATE}.", param=name)
    return value


def _models(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > MAX_MODELS
        or not all(isinstance(m, str) and 0 < len(m) <= 256 for m in value)
    ):
        raise InvalidRequest(
            f"'models' must be an array of at most {MAX_MODELS} model names or patterns.", param="models"
        )
    return tuple(dict.fromkeys(value))


__all__ = ["PERIODS", "SETTING_FIELDS", "Quota", "Settings", "parse_settings"]
