"""What each side's request fields become: carried, dropped, or refused by name.

A field with no equivalent is refused with a 400 naming it, never dropped quietly; only
fields that cannot change the answer are dropped (docs/anthropic.md has the lists).
"""

from __future__ import annotations

from typing import Any

from asgi_llm.errors import InvalidRequest


def unsupported(param: str, detail: str = "") -> InvalidRequest:
    return InvalidRequest(
        f"'{param}'{detail} has no equivalent in the translation between "
        "OpenAI chat and Anthropic Messages, so it is refused rather than "
        "dropped.",
        param=param,
        code="unsupported_parameter",
    )


def invalid(param: str, what: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(f"'{param}' {what}.", param=param, code=code)


def check_fields(
    payload: dict[str, Any],
    carried: frozenset[str],
    dropped: frozenset[str],
    neutral: dict[str, tuple[Any, ...]],
) -> None:
    for name, value in payload.items():
        if name in carried or name in dropped:
            continue
        if name in neutral and any(_same(value, ok) for ok in neutral[name]):
            continue
        raise unsupported(name)


def _same(value: Any, neutral: Any) -> bool:
    """Equal, with booleans kept apart from numbers (`seed: false` is not `seed: 0`)."""
    return bool(value == neutral) and (type(value) is bool) == (type(neutral) is bool)
