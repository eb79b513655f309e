"""The embedded default: offline mock model, OpenAI too when OPENAI_API_KEY is set, no auth."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from asgi_llm.config.loader import Config

OPENAI_MODELS = ("gpt-4o-mini", "gpt-4o")


def default_config_dict(environ: Mapping[str, str]) -> dict[str, Any]:
    models: list[dict[str, Any]] = [
        {
            "name": "mock-1",
            "deployments": [
                {
                    "id": "mock",
                    "provider": "mock",
                    "model": "mock-1",
                    "capabilities": ["tools", "json_mode", "vision"],
                    "context_window": 32768,
                    "mock": {"latency_ms": 20, "chunk_delay_ms": 20, "chunks": 8},
                }
            ],
        }
    ]
    if environ.get("OPENAI_API_KEY"):
        for name in OPENAI_MODELS:
            models.append(
                {
                    "name": name,
                    "deployments": [
                        {
                            "id": f"openai-{name}",
                            "provider": "openai",
                            "model": name,
                            "api_key": "${OPENAI_API_KEY}",
                            "capabilities": ["vision", "tools", "json_mode"],
                            "context_window": 128000,
                        }
                    ],
                }
            )
    return {"models": models}


def default_config(environ: Mapping[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    return Config.from_dict(default_config_dict(environ), environ=environ, source="<embedded default>")
