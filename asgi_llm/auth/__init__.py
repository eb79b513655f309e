"""Authentication and authorization: API keys, JWT, introspection, RBAC and the audit log."""

from asgi_llm.auth.keys import hash_key
from asgi_llm.auth.middleware import AuthMiddleware

__all__ = ["AuthMiddleware", "hash_key"]
