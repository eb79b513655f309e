"""A stack with the dashboard on: a global admin, a tenant admin, and a plain user."""

from __future__ import annotations

from typing import Any

from asgi_llm.auth.keys import hash_key
from tests.conftest import mock_model

ROOT_KEY = "sk-dash-root-0123456789abcdef"
TEAM_ADMIN_KEY = "sk-dash-team-0123456789abcdef"
USER_KEY = "sk-dash-user-0123456789abcdef"


def document(ui: Any = True, **extra: Any) -> dict[str, Any]:
    admin = ui if isinstance(ui, dict) else {"ui": ui}
    return {
        "models": [mock_model("m1")],
        "auth": {
            "api_keys": [
                {"id": "root", "key_sha256": hash_key(ROOT_KEY), "roles": ["admin"]},
                {
                    "id": "team-a-admin",
                    "key_sha256": hash_key(TEAM_ADMIN_KEY),
                    "roles": ["admin"],
                    "tenant": "a",
                },
                {"id": "user", "key_sha256": hash_key(USER_KEY), "roles": ["user"], "tenant": "a"},
            ],
            "roles": {
                "admin": {"models": ["*"], "endpoints": ["*"], "admin": True},
                "user": {"models": ["*"], "endpoints": ["chat"]},
            },
        },
        "admin": admin,
        **extra,
    }
