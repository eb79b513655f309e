import json

import pytest

from asgi_llm import Config, ConfigError
from asgi_llm.config.default import default_config

MINIMAL = {
    "models": [
        {
            "name": "gpt-4o-mini",
            "aliases": ["mini"],
            "deployments": [
                {
                    "id": "a",
                    "provider": "openai-compatible",
                    "model": "m",
                    "base_url": "http://127.0.0.1:9/v1",
                    "api_key": "${KEY:-sk-default}",
                }
            ],
        }
    ]
}


def test_from_dict_expands_env_with_default():
    config = Config.from_dict(MINIMAL, environ={})
    assert config.models[0].deployments[0].api_key == "sk-default"
    config = Config.from_dict(MINIMAL, environ={"KEY": "sk-env"})
    assert config.models[0].deployments[0].api_key == "sk-env"


def test_missing_env_var_names_the_field():
    data = json.loads(json.dumps(MINIMAL))
    data["models"][0]["deployments"][0]["api_key"] = "${NOT_SET_ANYWHERE}"
    with pytest.raises(ConfigError) as info:
        Config.from_dict(data, environ={})
    assert "models[0].deployments[0].api_key" in str(info.value)
    assert "NOT_SET_ANYWHERE" in str(info.value)


def test_unknown_key_is_an_error_with_its_path():
    data = json.loads(json.dumps(MINIMAL))
    data["models"][0]["deployments"][0]["bogus"] = 1
    with pytest.raises(ConfigError, match=r"models\[0\]\.deployments\[0\]\.bogus"):
        Config.from_dict(data)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("base_url", "ftp://example.com", "http"),
        ("base_url", "http://user:pw@example.com", "credentials"),
        ("base_url", "http://0.0.0.0:8000/v1", "unspecified"),
        ("base_url", "http://[::]/v1", "unspecified"),
        ("provider", "nope", "openai"),
        ("timeout_s", -1, "greater than 0"),
    ],
)
def test_bad_deployment_fields(field, value, message):
    data = json.loads(json.dumps(MINIMAL))
    data["models"][0]["deployments"][0][field] = value
    with pytest.raises(ConfigError) as info:
        Config.from_dict(data)
    assert f"models[0].deployments[0].{field}" in str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "[::ffff:169.254.169.254]",
        "2852039166",
        "0xA9FEA9FE",
        "169.254.43518",
        "[fe80::1]",
        "[fd00:ec2::254]",
        "[64:ff9b::a9fe:a9fe]",
        "[2002:a9fe:a9fe::]",
        "metadata.google.internal",
        "METADATA.google.internal.",
    ],
)
def test_metadata_addresses_in_any_spelling_are_refused_unless_allowed(host):
    """THREATS H8: cloud metadata endpoints, whatever the spelling (legacy IPv4 forms, IPv6
    transition forms, well-known names). Loopback and private networks stay allowed: a local
    vLLM or Ollama server is a normal upstream."""
    data = json.loads(json.dumps(MINIMAL))
    deployment = data["models"][0]["deployments"][0]
    deployment["base_url"] = f"http://{host}/latest"
    with pytest.raises(ConfigError, match=r"models\[0\]\.deployments\[0\].*base_url points at a link-local"):
        Config.from_dict(data)
    deployment["allow_link_local"] = True
    Config.from_dict(data)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "10.1.2.3", "localhost", "api.openai.com", "2130706433"],
)
def test_ordinary_hosts_load(host):
    data = json.loads(json.dumps(MINIMAL))
    data["models"][0]["deployments"][0]["base_url"] = f"http://{host}:8000/v1"
    assert Config.from_dict(data).models[0].deployments[0].base_url == f"http://{host}:8000/v1"


def test_azure_needs_api_version():
    data = json.loads(json.dumps(MINIMAL))
    data["models"][0]["deployments"][0]["provider"] = "azure"
    with pytest.raises(ConfigError, match="api_version"):
        Config.from_dict(data)


def test_duplicate_names_and_ids_are_refused():
    data = json.loads(json.dumps(MINIMAL))
    data["models"].append(json.loads(json.dumps(data["models"][0])))
    data["models"][1]["name"] = "other"
    with pytest.raises(ConfigError, match="used twice"):
        Config.from_dict(data)
    data["models"][1]["deployments"][0]["id"] = "b"
    data["models"][1]["aliases"] = ["MINI"]
    with pytest.raises(ConfigError, match="MINI"):
        Config.from_dict(data)


def test_fallbacks_must_name_known_models():
    data = dict(MINIMAL, routing={"fallbacks": {"gpt-4o-mini": ["missing"]}})
    with pytest.raises(ConfigError, match="missing"):
        Config.from_dict(data)


def test_all_three_formats_load(tmp_path):
    yaml_file = tmp_path / "proxy.yaml"
    yaml_file.write_text(
        "models:\n  - name: m\n    deployments:\n      - {id: d, provider: mock, model: m}\n"
    )
    toml_file = tmp_path / "proxy.toml"
    toml_file.write_text(
        '[[models]]\nname = "m"\n[[models.deployments]]\nid = "d"\nprovider = "mock"\nmodel = "m"\n'
    )
    json_file = tmp_path / "proxy.json"
    json_file.write_text(
        json.dumps(
            {"models": [{"name": "m", "deployments": [{"id": "d", "provider": "mock", "model": "m"}]}]}
        )
    )
    for path in (yaml_file, toml_file, json_file):
        config = Config.from_file(path)
        assert config.models[0].deployments[0].id == "d"
        assert config.source == str(path)


def test_unparseable_file_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("models: [\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        Config.from_file(path)
    with pytest.raises(ConfigError, match="cannot read"):
        Config.from_file(tmp_path / "absent.yaml")


def test_contract_example_config_is_valid(tmp_path):
    from tests.config.contract_example import CONTRACT_YAML

    path = tmp_path / "proxy.yaml"
    path.write_text(CONTRACT_YAML)
    config = Config.from_file(path, environ={"OPENAI_API_KEY": "sk-test"})
    assert config.routing.fallbacks == {"gpt-4o": ("gpt-4o-mini",)}
    assert config.auth is not None and config.auth.jwt is not None
    assert config.limits is not None and config.limits.rules[0].requests == "60/minute"


def test_redacted_hides_secrets():
    config = Config.from_dict(MINIMAL, environ={"KEY": "sk-very-secret"})
    text = json.dumps(config.redacted())
    assert "sk-very-secret" not in text
    assert '"api_key": "***"' in text


def test_embedded_default_serves_mock_and_openai_when_keyed():
    assert [m.name for m in default_config(environ={}).models] == ["mock-1"]
    names = [m.name for m in default_config(environ={"OPENAI_API_KEY": "sk-x"}).models]
    assert names[0] == "mock-1" and "gpt-4o-mini" in names
