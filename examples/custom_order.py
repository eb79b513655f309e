"""A stack in your own order: per-IP rate limits with no auth in front of the router, and a
second, authenticated stack for another path prefix.

    public:  /public/v1/...  (10 requests a minute per client address, no key)
    private: /private/v1/... (API keys)
"""

from starlette.applications import Starlette
from starlette.routing import Mount

from asgi_llm import AuthMiddleware, Config, ProviderApp, RateLimitMiddleware, RouterMiddleware
from asgi_llm.auth import hash_key

MODELS = [{"name": "mock-1", "deployments": [{"id": "mock", "provider": "mock", "model": "mock-1"}]}]

public_config = Config.from_dict({
    "models": MODELS,
    "limits": {"storage": "memory://", "rules": [{"per": "ip", "requests": "10/minute"}]},
})
public = RateLimitMiddleware(RouterMiddleware(ProviderApp(config=public_config), config=public_config),
                             config=public_config)

private_config = Config.from_dict({
    "models": MODELS,
    "auth": {"api_keys": [{"id": "svc", "key_sha256": hash_key("sk-private-example"), "roles": ["all"]}],
             "roles": {"all": {"models": ["*"], "endpoints": ["*"]}}},
})
private = AuthMiddleware(RouterMiddleware(ProviderApp(config=private_config), config=private_config),
                         config=private_config)

app = Starlette(routes=[Mount("/public", app=public), Mount("/private", app=private)])
