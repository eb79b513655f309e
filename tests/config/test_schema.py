"""Schema checks that need no file: role grants and every URL in the config."""

from __future__ import annotations

import pytest

from asgi_llm import Config, ConfigError
from asgi_llm.config.default import default_config
from asgi_llm.config.schema import GRANTABLE_ENDPOINTS
from asgi_llm.request import ENDPOINTS, grant_for
from tests.conftest import mock_model


def with_roles(**roles: dict) -> dict:
    return {"models": [mock_model("m")], "auth": {"roles": roles}}


@pytest.mark.parametrize(
    ("endpoints", "where", "hint"),
    [
        (["chat", "model", "embedding"], "auth.roles.user.endpoints[1]", "'model'"),
        (["chat", "completions", "embedding"], "auth.roles.user.endpoints[2]", "'embedding'"),
        (["messages"], "auth.roles.user.endpoints[0]", "granted by chat"),
        (["admin"], "auth.roles.user.endpoints[0]", "admin: true"),
        (["Chat"], "auth.roles.user.endpoints[0]", "'Chat'"),
    ],
)
def test_an_unknown_endpoint_name_is_an_error_naming_field_and_valid_names(endpoints, where, hint):
    with pytest.raises(ConfigError) as info:
        Config.from_dict(with_roles(user={"models": ["m"], "endpoints": endpoints}))
    message = str(info.value)
    assert f"{where}: unknown endpoint" in message and hint in message
    assert "chat, completions, embeddings, models, responses or *" in message


@pytest.mark.parametrize("endpoints", [["*"], ["chat", "completions", "embeddings", "models"], []])
def test_known_endpoint_names_load(endpoints):
    config = Config.from_dict(with_roles(user={"models": ["m"], "endpoints": endpoints}))
    assert config.auth is not None and config.auth.roles["user"].endpoints == tuple(endpoints)


def test_the_grantable_names_are_the_ones_auth_checks():
    """Auth checks each route's grant (`grant_for`): its name, but `chat` for /v1/messages and
    its count_tokens (a chat request in Anthropic's form), and `admin: true` for the admin
    routes. A new route's grant must be in GRANTABLE_ENDPOINTS, or roles could not grant it."""
    checked = {grant_for(name) for name, _ in ENDPOINTS.values() if not name.startswith("admin.")}
    assert checked == set(GRANTABLE_ENDPOINTS)
    assert grant_for("messages") == grant_for("messages.count_tokens") == "chat"


def test_the_embedded_default_still_validates():
    assert default_config(environ={}).models[0].name == "mock-1"
    assert default_config(environ={"OPENAI_API_KEY": "sk-x"}).auth is None


def with_field(path: str, value: object) -> dict:
    """A config with one URL field set: `cache.backend`, `models[0].deployments[0].base_url`."""
    data: dict = {
        "models": [
            {"name": "m", "deployments": [{"id": "d", "provider": "openai", "model": "m", "api_key": "k"}]}
        ],
        "auth": {
            "jwt": {"jwks_url": "https://idp.test/jwks", "issuer": "i", "audience": "a"},
            "oauth2_introspection": {
                "url": "https://idp.test/introspect",
                "client_id": "c",
                "client_secret": "s",
            },
            "key_store": {"url": "redis://127.0.0.1:6379/3"},
        },
        "limits": {},
        "cache": {},
        "metrics": {"statsd": {}},
    }
    *parents, leaf = path.replace("[0]", ".0").split(".")
    node = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[leaf] = value
    return data


BAD_URLS = [
    ("cache.backend", "redis://127.0.0.1:abc/1", "invalid port 'abc'"),
    ("cache.backend", "redis://127.0.0.1:99999/1", "invalid port '99999'"),
    ("cache.backend", "redis://127.0.0.1:6379/one", "invalid database number 'one'"),
    ("cache.backend", "redis://:6379/1", "needs a host"),
    ("cache.backend", "redis+cluster://h1:7000,h2:7001/1", "only database 0"),
    ("cache.backend", "memcached://h:1", "cache backend URL"),
    ("limits.storage", "redis://127.0.0.1:abc/0", "invalid port 'abc'"),
    ("limits.storage", "redis+cluster://h1,h2:7001", "'h1' needs a port"),
    ("responses.store", "redis+sentinel://h1:26379,h2:26379", "ends with the service"),
    ("auth.key_store.url", "redis+sentinel://h1:26379/svc/x", "invalid database number 'x'"),
    ("limits.storage", "redis+cluster://h1:7000,h2:x", "invalid port 'x'"),
    ("limits.storage", "redis+sentinel://h1:26379,:26380/svc", "needs a host"),
    ("limits.storage", "redis+unix://", "socket's path"),
    ("limits.storage", "mongodb://h:1", "storage URL"),
    ("auth.key_store.url", "redis://bad host:6379", "invalid host 'bad host'"),
    ("auth.key_store.url", "unix://", "socket's path"),
    ("auth.key_store.url", "http://127.0.0.1:6379", "Redis URL"),
    ("routing.redis_url", "redis://[::1:6379/0", "not a valid URL"),
    ("routing.redis_url", "rediss://h:0", "invalid port '0'"),
    ("reload.redis_url", "redis://h:6379/0?db=x", "invalid database number 'x'"),
    ("reload.redis_url", "127.0.0.1:6379", "Redis URL"),
    ("auth.jwt.jwks_url", "https://idp.test:44x/jwks", "invalid port '44x'"),
    ("auth.jwt.jwks_url", "idp.test/jwks", "http"),
    ("auth.oauth2_introspection.url", "https://idp_test..x/introspect", "invalid host"),
    ("models[0].deployments[0].base_url", "https://api.test:80a/v1", "invalid port '80a'"),
    ("models[0].deployments[0].base_url", "https://[fe80::1/v1", "not a valid URL"),
    ("metrics.statsd.host", "127.0.0.1:8125", "invalid host '127.0.0.1:8125'"),
    ("metrics.statsd.host", "udp://agent", "invalid host"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_URLS)
def test_every_url_is_parsed_when_the_config_loads(field, value, message):
    with pytest.raises(ConfigError) as info:
        Config.from_dict(with_field(field, value))
    assert f"{field}: " in str(info.value) and message in str(info.value), str(info.value)


def test_a_key_store_on_a_cluster_keeps_its_keys_in_one_slot():
    on_cluster = Config.from_dict(with_field("auth.key_store.url", "redis+cluster://h1:7000"))
    assert on_cluster.auth.key_store.prefix == "{asgi_llm}"  # its MULTIs span its keys
    single = Config.from_dict(with_field("auth.key_store.url", "redis://h:6379/3"))
    assert single.auth.key_store.prefix == "asgi_llm"  # the layout of keys minted before


def test_a_url_error_never_repeats_its_password():
    with pytest.raises(ConfigError) as info:
        Config.from_dict(with_field("cache.backend", "redis://user:hunter2-secret@cache:63x9/0"))
    assert "invalid port '63x9'" in str(info.value) and "hunter2" not in str(info.value)


GOOD_URLS = [
    ("cache.backend", "memory://"),
    ("cache.backend", "rediss://user:p%40ss@cache.internal:6380/2"),
    ("cache.backend", "redis://127.0.0.1"),
    ("limits.storage", "redis://:pw@127.0.0.1:6379/0"),
    ("limits.storage", "async+redis://127.0.0.1:6379"),
    ("limits.storage", "redis+cluster://h1:7000,h2:7001"),
    ("limits.storage", "redis+sentinel://:pw@h1:26379,h2:26379/mymaster"),
    ("limits.storage", "redis+unix:///var/run/redis.sock"),
    ("limits.storage", "redis://127.0.0.1/0"),
    ("cache.backend", "redis+cluster://h1:7000,h2:7001"),
    ("cache.backend", "unix:///tmp/redis.sock"),
    ("responses.store", "redis+sentinel://s1:26379,s2:26379/mymaster/2"),
    ("auth.key_store.url", "redis+cluster://:pw@h1:7000"),
    ("routing.redis_url", "redis+sentinel://s1:26379/mymaster"),
    ("reload.redis_url", "redis+unix:///var/run/redis.sock?db=4"),
    ("auth.key_store.url", "unix:///var/run/redis.sock?db=3"),
    ("routing.redis_url", "redis://[::1]:6379/0"),
    ("reload.redis_url", "redis://redis-0.redis.default.svc.cluster.local.:6379/4"),
    ("auth.jwt.jwks_url", "http://127.0.0.1:8080/.well-known/jwks.json"),
    ("models[0].deployments[0].base_url", "https://bücher.example/v1"),
    ("metrics.statsd.host", "::1"),
    ("metrics.statsd.host", "datadog-agent"),
]


@pytest.mark.parametrize(("field", "value"), GOOD_URLS)
def test_ordinary_urls_load(field, value):
    node: object = Config.from_dict(with_field(field, value))
    for part in field.replace("[0]", ".0").split("."):
        node = node[int(part)] if part.isdigit() else getattr(node, part)  # type: ignore[index]
    assert node == value  # kept as written: checked, not rewritten
