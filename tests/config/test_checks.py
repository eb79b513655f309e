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


UNPRICED_YAML = """\
models:
  - name: m
    deployments:
      - {id: priced-by-table, provider: openai, model: gpt-4o-mini, api_key: k}
      - {id: own-cost, provider: openai-compatible, model: x, base_url: "http://127.0.0.1:9/v1",
         cost: {input_per_mtok: 1}}
      - {id: nobody-knows, provider: openai-compatible, model: llama-local, base_url: "http://127.0.0.1:9/v1"}
      - {id: local, provider: ollama, model: "llama3.1:8b"}
      - {id: offline, provider: mock, model: mock-1}
  - name: n
    deployments:
      - {id: new-claude, provider: bedrock, model: "anthropic.claude-opus-9-v1:0", region: us-east-1}
"""


def test_check_config_warns_about_a_deployment_nothing_prices(tmp_path, capsys):
    """Through the CLI: exit 0 (a warning, not an error), each unpriced deployment named with
    its field path; priced ones, the mock and one's own servers are not."""
    from asgi_llm.cli import main

    path = tmp_path / "proxy.yaml"
    path.write_text(UNPRICED_YAML)
    assert main(["check-config", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("ok: ")
    lines = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 2, captured.err
    assert lines[0].startswith(
        f"warning: {path}: models[0].deployments[2]: deployment 'nobody-knows' has no cost:"
    )
    assert "openai-compatible model 'llama-local'" in lines[0] and "$0" in lines[0]
    assert lines[1].startswith(f"warning: {path}: models[1].deployments[0]: deployment 'new-claude'")
    assert "bedrock model 'anthropic.claude-opus-9-v1:0'" in lines[1]
