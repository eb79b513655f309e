"""API keys are kept and compared only as SHA-256 digests."""

from __future__ import annotations

import hashlib


def hash_key(key: str) -> str:
    """The `sha256:<hex>` form used in config (`asgi-llm hash-key`)."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()
