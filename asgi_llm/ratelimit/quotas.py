"""The runtime limits of a key or a team (`context.Quota`, set by asgi_llm/auth/quotas.py) as
the limiter's checks.

`rpm` and `tpm` are one window each, per key or per tenant, beside the config's rules (both
hold). A budget counts in the very counter a config budget of the same scope and period
uses (`<prefix>:budget:<per>:<period>:<label>`, member: key id or tenant), so a team's spend
is one figure whichever cap reads it; when both cap it, the lower holds, charged once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from asgi_llm.context import Quota
from asgi_llm.ratelimit.budgets import counter_key, period_bounds, to_micros
from asgi_llm.ratelimit.identity import key_part
from asgi_llm.ratelimit.store import BudgetHold

MINUTE_MS = 60_000


def quota_windows(
    prefix: str, quotas: tuple[Quota, ...]
) -> Iterator[tuple[str, int, Literal["requests", "tokens"]]]:
    """(storage key, amount per minute, kind) of each rate a quota sets."""
    for quota in quotas:
        ident = key_part(quota.who)
        limits: tuple[tuple[Literal["requests", "tokens"], int | None], ...] = (
            ("requests", quota.rpm),
            ("tokens", quota.tpm),
        )
        for kind, amount in limits:
            if amount is not None:
                yield f"{prefix}:rt:{quota.per}:{kind[0]}:{amount}/{MINUTE_MS}:{ident}", amount, kind


def add_quota_budgets(holds: list[BudgetHold], prefix: str, quotas: tuple[Quota, ...], now_s: float) -> None:
    """A budget hold per quota with a budget; one already held on the same counter (a
    config budget of the same scope and period) keeps the lower cap, and is charged once."""
    for quota in quotas:
        if quota.budget_usd is None:
            continue
        label, ends = period_bounds(quota.budget_period, now_s)
        key = counter_key(prefix, quota.per, quota.budget_period, label)
        hold = BudgetHold(key, quota.who, to_micros(quota.budget_usd), ends)
        for index, held in enumerate(holds):
            if (held.key, held.member) == (hold.key, hold.member):
                if hold.limit_micros < held.limit_micros:
                    holds[index] = hold
                break
        else:
            holds.append(hold)


__all__ = ["MINUTE_MS", "add_quota_budgets", "quota_windows"]
