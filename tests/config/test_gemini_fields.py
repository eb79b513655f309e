"""The `builtin_tools` deployment field: Google's own tools, for Gemini models only."""

from __future__ import annotations

import pytest

from asgi_llm import Config, ConfigError


def config(**deployment: object) -> dict[str, object]:
    return {
        "models": [{"name": "m", "deployments": [{"id": "g", "model": "gemini-2.5-flash", **deployment}]}]
    }


@pytest.mark.parametrize(
    "fields,why",
    [
        ({"provider": "bedrock", "builtin_tools": ["google_search"]}, "only to Gemini models"),
        (
            {
                "provider": "vertex",
                "model": "claude-sonnet-4-5@20250929",
                "project": "p",
                "location": "global",
                "api_key": "t",
                "builtin_tools": ["google_search"],
            },
            "only to Gemini models",
        ),
        ({"provider": "gemini", "api_key": "k", "builtin_tools": ["code_execution"]}, "google_search"),
    ],
)
def test_builtin_tools_only_for_gemini_models(fields, why):
    with pytest.raises(ConfigError) as caught:
        Config.from_dict(config(**fields))
    assert "models[0].deployments[0].builtin_tools" in str(caught.value) and why in str(caught.value)
    ok = Config.from_dict(
        config(provider="gemini", api_key="k", builtin_tools=["google_search", "url_context"])
    )
    assert ok.models[0].deployments[0].builtin_tools == ("google_search", "url_context")
