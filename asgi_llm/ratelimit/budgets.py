"""Budgets: USD spend per key/tenant per calendar period (UTC), priced by accounting.py.

Spend is kept in integer micro-dollars (no float drift across thousands of increments), in
one hash per (scope, period) in the same store as the rate counters, so a fleet shares it.
A request is admitted while its scope has spent less than the cap, and its real cost is
charged when the response ends; the cap can thus be passed by at most the cost of the
requests in flight when it is reached.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime, timedelta

from asgi_llm.config.schema import Budget

MICROS = 1_000_000


def period_bounds(period: str, now_s: float) -> tuple[str, int]:
    """(label, end in epoch ms) of the calendar period holding `now_s`, in UTC. Worked out
    once per period and hour: every period starts at a UTC midnight, so an hour lies in one."""
    return _bounds(period, int(now_s // 3600))


@functools.lru_cache(maxsize=64)
def _bounds(period: str, hour: int) -> tuple[str, int]:
    now = datetime.fromtimestamp(hour * 3600, UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        label, end = day.strftime("%Y-%m-%d"), day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())  # ISO weeks start on Monday
        year, week, _ = start.isocalendar()
        label, end = f"{year}-W{week:02d}", start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        label = start.strftime("%Y-%m")
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
    return label, int(end.timestamp() * 1000)


def budget_key(prefix: str, budget: Budget, label: str) -> str:
    return counter_key(prefix, budget.per, budget.period, label)


def counter_key(prefix: str, per: str, period: str, label: str) -> str:
    """The hash of one scope's spend in one period: a config budget and a team's or key's
    own budget of the same scope and period count in the same one (ratelimit/quotas.py)."""
    return f"{prefix}:budget:{per}:{period}:{label}"


def to_micros(usd: float) -> int:
    """USD to micro-USD, rounded up: a fraction of a micro-dollar still costs."""
    return math.ceil(usd * MICROS - 1e-9) if usd > 0 else 0


__all__ = ["MICROS", "budget_key", "counter_key", "period_bounds", "to_micros"]
