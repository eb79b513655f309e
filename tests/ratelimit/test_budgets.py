"""Budget periods (UTC calendar) and micro-dollar arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from asgi_llm.ratelimit.budgets import period_bounds, to_micros


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("period", "now", "label", "ends"),
    [
        ("day", "2026-11-28T13:05:00", "2026-11-28", "2026-11-29T00:00:00"),
        ("week", "2026-11-28T13:05:00", "2026-W48", "2026-11-30T00:00:00"),  # a Saturday
        ("month", "2026-11-28T13:05:00", "2026-11", "2026-12-01T00:00:00"),
        ("month", "2026-12-31T23:59:59", "2026-12", "2027-01-01T00:00:00"),
        ("week", "2027-01-01T08:00:00", "2026-W53", "2027-01-04T00:00:00"),
    ],
)
def test_period_bounds(period, now, label, ends):
    assert period_bounds(period, ts(now)) == (label, int(ts(ends) * 1000))


def test_micros_round_up_and_never_drift():
    assert to_micros(0.1) == 100_000
    assert to_micros(0.0000001) == 1
    assert to_micros(0) == 0
    assert sum(to_micros(0.000123) for _ in range(10_000)) == 1_230_000
