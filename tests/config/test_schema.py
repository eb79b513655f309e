"""Schema checks that need no file: role grants and every URL in the config."""

from __future__ import annotations

import pytest

from asgi_llm import Config, ConfigError
from asgi_llm.config.default import default_config
from asgi_llm.config.schema import GRANTABLE_ENDPOINTS
from asgi_llm.request import ENDPOINTS
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
    assert "chat, completions, embeddings, models or *" in message


@pytest.mark.parametrize("endpoints", [["*"], ["chat", "completions", "embeddings", "models"], []])
def test_known_endpoint_names_load(endpoints):
    config = Config.from_dict(with_roles(user={"models": ["m"], "endpoints": endpoints}))
    assert config.auth is not None and config.auth.roles["user"].endpoints == tuple(endpoints)


def test_the_grantable_names_are_the_ones_auth_checks():
    """Auth checks the endpoint's name, except /v1/messages (checked as chat: the exchange
    turns it into a chat request) and the admin routes (granted by `admin: true`). A new route
    must be added to GRANTABLE_ENDPOINTS, or roles could not grant it."""
    checked = {name for name, _ in ENDPOINTS.values() if not name.startswith("admin.")} - {"messages"}
    assert checked == set(GRANTABLE_ENDPOINTS)


def test_the_embedded_default_still_validates():
    assert default_config(environ={}).models[0].name == "mock-1"
    assert default_config(environ={"OPENAI_API_KEY": "sk-x"}).auth is None
