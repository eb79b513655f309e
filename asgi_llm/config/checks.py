"""Advice on a config that loads: settings that are valid but grant or limit nothing today,
and deployments whose requests nothing prices.

Warnings, not errors: a pattern may anticipate a model a later reload adds, and a model may
really be free. `check-config` prints them, `serve` prints them at start, and a reload logs
them.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from asgi_llm.config.catalog import normalize_model_name
from asgi_llm.config.model_facts import UNPRICED_PROVIDERS
from asgi_llm.config.prices import has_price

if TYPE_CHECKING:
    from asgi_llm.config.loader import Config


def config_warnings(config: Config) -> list[str]:
    """One line per suspicious setting: `field path: what is wrong`."""
    names = [name for model in config.models for name in (model.name, *model.aliases)]
    patterns: list[tuple[str, str]] = []
    if config.auth is not None:
        for role_name, role in config.auth.roles.items():
            patterns += [(f"auth.roles.{role_name}.models[{j}]", p) for j, p in enumerate(role.models)]
    if config.limits is not None:
        patterns += [
            (f"limits.rules[{i}].model", rule.model)
            for i, rule in enumerate(config.limits.rules)
            if rule.model is not None
        ]
    return (
        [
            f"{where}: {pattern!r} matches no model name or alias{_near_miss(pattern, names)}"
            for where, pattern in patterns
            if not _matches_any(pattern, names)
        ]
        + _unpriced(config)
        + _dashboard(config)
    )


def _dashboard(config: Config) -> list[str]:
    """The dashboard is on but nobody could sign in (unless a mounted stack's own
    `authenticate` hook makes admins)."""
    if config.admin is None or not config.admin.ui:
        return []
    if config.auth is None:
        return ["admin.ui: there is no auth: section, so only an authenticate hook can sign anyone in"]
    if not any(role.admin for role in config.auth.roles.values()):
        return ["admin.ui: no role has admin: true, so nobody can sign in to the dashboard"]
    return []


def _unpriced(config: Config) -> list[str]:
    """Deployments with neither a `cost:` nor a price in the packaged table: their requests
    cost $0 to budgets and the cost metric. The mock and one's own servers (ollama, vllm,
    lmstudio) are not expected to have a per-token price."""
    return [
        f"models[{i}].deployments[{j}]: deployment {d.id!r} has no cost: and the packaged price "
        f"table has no price for {d.provider} model {d.model!r}; its requests count as $0 in "
        "budgets and the cost metric (add cost: {input_per_mtok: ..., output_per_mtok: ...})"
        for i, model in enumerate(config.models)
        for j, d in enumerate(model.deployments)
        if d.provider not in UNPRICED_PROVIDERS and not has_price(d)
    ]


def _matches_any(pattern: str, names: Iterable[str]) -> bool:
    # The same test auth (Principal.may_use) and the rate limiter apply: exact-case globs.
    return pattern == "*" or any(fnmatchcase(name, pattern) for name in names)


def _near_miss(pattern: str, names: Iterable[str]) -> str:
    folded = normalize_model_name(pattern)
    if folded is not None and _matches_any(folded, [normalize_model_name(n) or "" for n in names]):
        return " (it would in another case or width: patterns compare exactly)"
    return ""


__all__ = ["config_warnings"]
