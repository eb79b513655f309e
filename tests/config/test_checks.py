"""Advice on a config that loads: grants that cannot match anything today."""

from __future__ import annotations

from asgi_llm import Config
from asgi_llm.config.checks import config_warnings
from tests.conftest import mock_model


def config(roles: dict, rules: list | None = None) -> Config:
    models = [{**mock_model("gpt-4o"), "aliases": ["4o"]}, mock_model("claude-sonnet")]
    data: dict = {"models": models, "auth": {"roles": roles}}
    if rules is not None:
        data["limits"] = {"rules": rules}
    return Config.from_dict(data)


def test_a_model_pattern_that_matches_nothing_is_a_warning_with_its_field():
    found = config_warnings(config({"user": {"models": ["gpt-4o", "chta", "claude-*", "4o", "*"]}}))
    assert len(found) == 1
    assert found[0].startswith("auth.roles.user.models[1]: 'chta' matches no model name or alias")


def test_a_pattern_that_matches_only_in_another_case_says_so():
    (found,) = config_warnings(config({"user": {"models": ["GPT-4o"]}}))
    assert "auth.roles.user.models[0]" in found and "case" in found


def test_a_rate_limit_rule_for_no_model_is_a_warning():
    rules = [
        {"per": "model", "model": "gpt-5*", "requests": "1/second"},
        {"per": "key", "requests": "1/second"},
    ]
    (found,) = config_warnings(config({}, rules))
    assert found.startswith("limits.rules[0].model: 'gpt-5*' matches no model name or alias")


def test_a_config_whose_patterns_all_match_has_no_warnings():
    assert config_warnings(config({"a": {"models": ["*"]}, "b": {"models": ["claude-?onnet", "4o"]}})) == []
    assert config_warnings(Config.from_dict({"models": [mock_model()]})) == []
