"""Configuration: the schema, loading, the embedded default and the live snapshot."""

from asgi_llm.config.loader import Config
from asgi_llm.config.manager import ConfigManager
from asgi_llm.errors import ConfigError

__all__ = ["Config", "ConfigError", "ConfigManager"]
