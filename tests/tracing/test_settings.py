"""The `tracing:` section: what the schema refuses (so check-config catches it), where spans go,
what views show, and that OpenTelemetry is imported only when tracing is configured."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from asgi_llm import Config, ConfigError
from asgi_llm.cli import main
from asgi_llm.tracing.settings import traces_url
from tests.conftest import mock_model


def load(tracing: dict[str, object]) -> Config:
    return Config.from_dict({"models": [mock_model()], "tracing": tracing})


@pytest.mark.parametrize(
    ("endpoint", "says"),
    [
        ("collector:4318", "must be an http:// or https:// URL"),
        ("grpc://collector:4317", "must be an http:// or https:// URL"),
        ("http://collector:99999", "invalid port"),
        ("http://user:pw@collector:4318", "put them in tracing.headers"),
        ("http://collector:4318/?x=1", "query"),
    ],
)
def test_a_bad_endpoint_is_refused_at_its_field(endpoint, says):
    with pytest.raises(ConfigError) as caught:
        load({"otlp_endpoint": endpoint})
    assert "tracing.otlp_endpoint" in str(caught.value) and says in str(caught.value)
    assert "pw" not in str(caught.value)


def test_the_endpoint_is_required_and_unknown_keys_are_refused():
    with pytest.raises(ConfigError, match=r"tracing\.otlp_endpoint"):
        load({"service_name": "x"})
    with pytest.raises(ConfigError, match=r"tracing\.exporter"):
        load({"otlp_endpoint": "http://c:4318", "exporter": "grpc"})
    with pytest.raises(ConfigError, match=r"tracing\.sample_ratio"):
        load({"otlp_endpoint": "http://c:4318", "sample_ratio": 1.5})
    with pytest.raises(ConfigError, match=r"tracing\.headers"):
        load({"otlp_endpoint": "http://c:4318", "headers": {"bad name": "x"}})


def test_spans_go_to_the_otlp_traces_path():
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("https://otlp.example.com/") == "https://otlp.example.com/v1/traces"
    assert traces_url("https://api.example.com/otel/v1/traces") == "https://api.example.com/otel/v1/traces"


def test_export_headers_are_redacted_in_views():
    config = load({"otlp_endpoint": "http://c:4318", "headers": {"x-api-key": "s3cret-token"}})
    shown = config.redacted()["tracing"]
    assert shown["headers"] == "***" and "s3cret" not in json.dumps(config.redacted())
    assert shown["otlp_endpoint"] == "http://c:4318"


def test_check_config_says_the_extra_is_missing(tmp_path, monkeypatch, capsys):
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps({"models": [mock_model()], "tracing": {"otlp_endpoint": "http://c:4318"}}))
    assert main(["check-config", str(path)]) == 0
    real = importlib.util.find_spec

    def without_otel(name, *args, **kwargs):  # as on an install without the `otel` extra
        if name.startswith("opentelemetry"):
            return None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", without_otel)
    capsys.readouterr()
    assert main(["check-config", str(path)]) == 1
    said = capsys.readouterr()
    assert "tracing" in said.err + said.out and "pip install 'asgi-llm[otel]'" in said.err + said.out


def test_opentelemetry_is_imported_only_when_tracing_is_configured():
    code = (
        "import sys\n"
        "from asgi_llm import Config, build_app\n"
        "build_app(Config.from_dict({'models': [{'name': 'm', 'deployments': "
        "[{'id': 'd', 'provider': 'mock', 'model': 'm'}]}]}))\n"
        # (redis-py imports some of OpenTelemetry's metrics API itself when both are installed)
        "assert 'asgi_llm.tracing.tracer' not in sys.modules, 'imported'\n"
        "assert 'opentelemetry.sdk.trace' not in sys.modules, 'imported'\n"
        "build_app(Config.from_dict({'models': [], 'tracing': {'otlp_endpoint': 'http://c:4318'}}))\n"
        "assert 'opentelemetry.sdk.trace' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
