"""The admin tests share the auth tests' key-store fixtures."""

from tests.auth.conftest import store_prefix

__all__ = ["store_prefix"]
