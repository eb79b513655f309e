"""docs/observability.md stays true: its metric list is the exporter's, its config blocks load,
and its custom-exporter example runs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import yaml

from asgi_llm import Config
from asgi_llm.metrics.prometheus import PrometheusExporter
from tests.conftest import mock_model
from tests.metrics.conftest import call, chat

DOC = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC, re.S | re.M)


def test_the_metric_table_lists_exactly_what_is_exported():
    documented = set(re.findall(r"^\| `(asgi_llm_[a-z_]+)` \|", DOC, re.M))
    exporter = PrometheusExporter()
    exported = {
        family.name + ("_total" if family.type == "counter" else "") for family in exporter.registry.collect()
    }
    assert documented == exported


def test_the_config_blocks_load():
    hosts = []
    for block in blocks("yaml"):
        data = yaml.safe_load(block)
        if isinstance(data, dict) and "metrics" in data:
            config = Config.from_dict(
                {"models": [mock_model()], **data}, environ={"DD_AGENT_HOST": "10.0.0.1"}
            )
            assert config.metrics.statsd is not None
            hosts.append(config.metrics.statsd.host)
    assert hosts == ["127.0.0.1", "10.0.0.1"]  # the full example, then the agent's from the environment


async def test_the_custom_exporter_example_runs(make_app, no_secrets_in_logs):
    (example,) = [b for b in blocks("python") if "class JsonLines" in b]
    config = Config.from_dict({"models": [mock_model("m1")]})
    namespace = {"config": config}
    exec(compile(example, "observability.md", "exec"), namespace)
    app = make_app(app=namespace["app"])
    logging.getLogger("llm.requests").setLevel(logging.INFO)
    assert (await call(app, "/v1/chat/completions", chat()))[0] == 200
    assert any('"model":"m1"' in line for line in no_secrets_in_logs.lines)
