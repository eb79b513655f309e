"""Authentication and authorization."""

from asgi_llm.auth.keys import hash_key

__all__ = ["hash_key"]
