"""A public cache: CacheMiddleware placed before (outside) AuthMiddleware.

    CacheMiddleware ─► AuthMiddleware ─► RouterMiddleware ─► ProviderApp

A question somebody with a key has already asked is answered from the cache to anyone,
key or not; a new question needs a key (401 without one). Errors are never stored, so a
refused request leaves nothing behind for the next caller.

What that means, on purpose: everything in this cache is public. Outside Auth there is no
principal, so there are no tenants to keep apart (`namespace_by: global` says it out loud;
`tenant` or `key` refuse to build here), a hit skips the role's model allow-list, and
nothing inward of the cache (limits, budgets, metrics placed inside) sees a hit. Use it for
answers that are public anyway (docs Q&A, a shared FAQ bot), never for tenants' data.

    hypercorn examples.public_cache:app
"""

from asgi_llm import AuthMiddleware, CacheMiddleware, Config, ProviderApp, RouterMiddleware
from asgi_llm.auth import hash_key

config = Config.from_dict({
    "models": [{"name": "mock-1", "deployments": [{"id": "mock", "provider": "mock", "model": "mock-1"}]}],
    "auth": {"api_keys": [{"id": "writer", "key_sha256": hash_key("sk-writer-example"), "roles": ["user"]}],
             "roles": {"user": {"models": ["*"], "endpoints": ["chat", "models"]}}},
    "cache": {"backend": "memory://", "namespace_by": "global", "ttl_s": 600},
})

app = CacheMiddleware(
    AuthMiddleware(RouterMiddleware(ProviderApp(config=config), config=config), config=config),
    config=config,
)
