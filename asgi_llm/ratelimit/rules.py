"""Rules: the `limits:` section compiled once per config snapshot, and a request's checks.

Rates are written in `limits`' notation and parsed by it (`10/second;600/minute` is two
windows of one rule). Storage keys name the rule by what it counts (per, model filter,
kind, window), not by its position, so reordering rules on reload keeps the counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal

import limits

from asgi_llm.config.loader import Config
from asgi_llm.config.schema import Budget, Limits
from asgi_llm.context import Principal
from asgi_llm.ratelimit.budgets import budget_key, period_bounds, to_micros
from asgi_llm.ratelimit.identity import IPNetwork, key_part, parse_networks, subject
from asgi_llm.ratelimit.quotas import MINUTE_MS, add_quota_budgets, quota_windows
from asgi_llm.ratelimit.store import Admission, BudgetHold, Slot, Strategy, Window

LEASE_MARGIN_S = 60.0


@dataclass(frozen=True, slots=True)
class Rate:
    amount: int
    expiry_ms: int
    text: str  # "60 per 1 minute", for messages

    @property
    def tag(self) -> str:
        return f"{self.amount}/{self.expiry_ms}"


@dataclass(frozen=True, slots=True)
class Rule:
    per: str
    model: str | None
    requests: tuple[Rate, ...]
    tokens: tuple[Rate, ...]
    concurrency: int | None


@dataclass(frozen=True, slots=True)
class _Template:
    """The windows and slots of one (caller, address, model): everything but the costs."""

    windows: tuple[tuple[str, Rate, Literal["requests", "tokens"]], ...]
    slots: tuple[Slot, ...]
    rates: tuple[Rate, ...]  # one per window


TEMPLATES_MAX = 4096  # callers x models remembered per snapshot; past it the memo restarts


@dataclass(frozen=True, slots=True)
class Plan:
    storage: str
    strategy: Strategy
    rules: tuple[Rule, ...]
    budgets: tuple[Budget, ...]
    prefix: str  # with the hash tag: every key of one request lands on one cluster node
    strict: bool
    replicas: int
    trusted: tuple[IPNetwork, ...]
    default_max_tokens: int
    timeout_s: float
    lease_ms: int
    # A rule or budget counts client addresses (`per: ip`): the address is needed even
    # for a known principal (without one it always is).
    counts_addresses: bool = False
    # Which rules apply to a caller and model, and their storage keys, worked out once per
    # snapshot: the keys are the same for every request of that caller and model.
    templates: dict[tuple[object, ...], _Template] = field(default_factory=dict, compare=False)


def parse_rates(text: str | None) -> tuple[Rate, ...]:
    if text is None:
        return ()
    return tuple(Rate(item.amount, item.get_expiry() * 1000, str(item)) for item in limits.parse_many(text))


def compile_plan(config: Config) -> Plan | None:
    section: Limits | None = config.limits
    if section is None:
        return None
    rules = tuple(
        Rule(rule.per, rule.model, parse_rates(rule.requests), parse_rates(rule.tokens), rule.concurrency)
        for rule in section.rules
    )
    timeouts = [d.timeout_s for d in config.catalog.deployments.values()] or [600.0]
    return Plan(
        storage=section.storage,
        strategy=section.strategy,
        rules=rules,
        budgets=section.budgets,
        prefix="{" + section.key_prefix + "}",
        strict=section.strict,
        replicas=section.replicas,
        trusted=parse_networks(section.trusted_proxies),
        default_max_tokens=section.default_max_tokens,
        timeout_s=section.timeout_s,
        lease_ms=int((max(timeouts) + LEASE_MARGIN_S) * 1000),
        counts_addresses=any(rule.per == "ip" for rule in rules),
    )


def model_matches(pattern: str | None, names: tuple[str, ...]) -> bool:
    if pattern is None:
        return True
    return any(fnmatchcase(name, pattern) for name in names)


@dataclass(slots=True)
class Checks:
    admission: Admission
    rates: tuple[Rate, ...]  # one per admission window, for messages


def build_checks(
    plan: Plan,
    request_id: str,
    principal: Principal | None,
    address: str,
    model_names: tuple[str, ...],
    tokens: int,
    now_s: float,
) -> Checks:
    """Every check one request must pass. `model_names`: the resolved name, then aliases."""
    memo = (
        (principal.id, principal.tenant, address, model_names, principal.quotas)
        if principal is not None
        else (None, None, address, model_names, ())
    )
    template = plan.templates.get(memo)
    if template is None:
        if len(plan.templates) >= TEMPLATES_MAX:
            plan.templates.clear()
        template = plan.templates[memo] = _template(plan, principal, address, model_names)
    windows = [
        Window(key, rate.amount, rate.expiry_ms, tokens if kind == "tokens" else 1, kind)
        for key, rate, kind in template.windows
    ]
    admission = Admission(request_id, windows, list(template.slots))
    if plan.budgets:
        model = model_names[0] if model_names else None
        for budget in plan.budgets:
            who = subject(budget.per, principal, address, model)
            if who is None:
                continue
            label, ends = period_bounds(budget.period, now_s)
            admission.budgets.append(
                BudgetHold(budget_key(plan.prefix, budget, label), who, to_micros(budget.usd), ends)
            )
    if principal is not None and principal.quotas:
        add_quota_budgets(admission.budgets, plan.prefix, principal.quotas, now_s)
    return Checks(admission, template.rates)


def _template(
    plan: Plan, principal: Principal | None, address: str, model_names: tuple[str, ...]
) -> _Template:
    windows: list[tuple[str, Rate, Literal["requests", "tokens"]]] = []
    slots: list[Slot] = []
    model = model_names[0] if model_names else None
    seen: set[str] = set()
    for rule in plan.rules:
        if not model_matches(rule.model, model_names):
            continue
        who = subject(rule.per, principal, address, model)
        if who is None:
            continue
        base = f"{plan.prefix}:{rule.per}:{key_part(rule.model) if rule.model else ''}"
        ident = key_part(who)
        kinds: tuple[tuple[Literal["requests", "tokens"], tuple[Rate, ...]], ...] = (
            ("requests", rule.requests),
            ("tokens", rule.tokens),
        )
        for kind, group in kinds:
            for rate in group:
                key = f"{base}:{kind[0]}:{rate.tag}:{ident}"
                if key in seen:  # the same limit written twice counts once
                    continue
                seen.add(key)
                windows.append((key, rate, kind))
        if rule.concurrency is not None:
            key = f"{base}:c:{rule.concurrency}:{ident}"
            if key not in seen:
                seen.add(key)
                slots.append(Slot(key, rule.concurrency, plan.lease_ms))
    if principal is not None and principal.quotas:
        for key, amount, kind in quota_windows(plan.prefix, principal.quotas):
            windows.append((key, Rate(amount, MINUTE_MS, f"{amount} per 1 minute"), kind))
    return _Template(tuple(windows), tuple(slots), tuple(rate for _, rate, _ in windows))


def scaled_for_one_replica(admission: Admission, replicas: int) -> Admission:
    """The degraded local limiter's share: every limit divided by the replica count.

    A token reservation larger than the share is cut to it, so a request that fits the
    fleet's limit still fits an empty local window.
    """
    if replicas <= 1:
        return admission
    windows = []
    for w in admission.windows:
        limit = max(1, w.limit // replicas)
        windows.append(Window(w.key, limit, w.expiry_ms, min(w.cost, limit), w.kind))
    slots = [Slot(s.key, max(1, s.limit // replicas), s.lease_ms) for s in admission.slots]
    return Admission(admission.id, windows, slots, list(admission.budgets))


__all__ = [
    "Checks",
    "Plan",
    "Rate",
    "Rule",
    "build_checks",
    "compile_plan",
    "parse_rates",
    "scaled_for_one_replica",
]
