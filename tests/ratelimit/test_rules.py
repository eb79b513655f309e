"""asgi_llm/ratelimit/rules.py: a request's checks, from the windows worked out once per
caller and model (Plan.templates)."""

from __future__ import annotations

from asgi_llm.config.loader import Config
from asgi_llm.context import Principal
from asgi_llm.ratelimit import rules
from asgi_llm.ratelimit.rules import build_checks, compile_plan


def plan_for(*rule_list: dict) -> rules.Plan:
    config = Config.from_dict(
        {
            "models": [{"name": "m", "deployments": [{"id": "m", "provider": "mock", "model": "m"}]}],
            "limits": {"rules": list(rule_list)},
        }
    )
    plan = compile_plan(config)
    assert plan is not None
    return plan


ALICE = Principal(id="alice", tenant="team-a")


def test_the_same_caller_and_model_get_the_same_keys_and_their_own_costs():
    plan = plan_for(
        {"per": "key", "requests": "10/minute", "tokens": "1000/minute"},
        {"per": "ip", "requests": "5/second"},
    )
    first = build_checks(plan, "r1", ALICE, "10.0.0.1", ("m",), 40, 0.0).admission
    second = build_checks(plan, "r2", ALICE, "10.0.0.1", ("m",), 70, 0.0).admission
    assert [w.key for w in first.windows] == [w.key for w in second.windows]
    assert [(w.kind, w.cost) for w in second.windows] == [("requests", 1), ("tokens", 70), ("requests", 1)]
    assert second.id == "r2" and len(plan.templates) == 1
    other = build_checks(plan, "r3", ALICE, "10.0.0.2", ("m",), 1, 0.0).admission
    assert other.windows[2].key != first.windows[2].key  # per: ip counts the address
    assert plan.counts_addresses


def test_a_rule_for_another_model_applies_only_to_it():
    plan = plan_for(
        {"per": "key", "model": "other", "requests": "10/minute"}, {"per": "tenant", "requests": "9/minute"}
    )
    checks = build_checks(plan, "r", ALICE, "", ("m",), 1, 0.0)
    assert [rate.amount for rate in checks.rates] == [9]
    assert not plan.counts_addresses


def test_the_memo_is_bounded(monkeypatch):
    monkeypatch.setattr(rules, "TEMPLATES_MAX", 3)
    plan = plan_for({"per": "key", "requests": "10/minute"})
    for n in range(10):
        build_checks(plan, "r", Principal(id=f"k{n}"), "", ("m",), 1, 0.0)
        assert len(plan.templates) <= 3
