"""LLMLayer and the exchange: stack order checks, context in scope, lifespan."""

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware

from asgi_llm import AuthMiddleware, Config, ProviderApp, RateLimitMiddleware, lifespan
from asgi_llm.admin import AdminMiddleware

CONFIG = Config.from_dict(
    {"models": [{"name": "m", "deployments": [{"id": "m", "provider": "mock", "model": "m"}]}]}
)


async def test_rate_limit_outside_auth_is_refused_at_startup():
    app = RateLimitMiddleware(AuthMiddleware(ProviderApp(config=CONFIG), config=CONFIG), config=CONFIG)
    with pytest.raises(RuntimeError, match="RateLimitMiddleware is placed outside AuthMiddleware"):
        async with lifespan(app):
            pass


async def test_the_check_sees_through_starlettes_own_layers():
    app = Starlette(
        middleware=[Middleware(AdminMiddleware, config=CONFIG), Middleware(AuthMiddleware, config=CONFIG)]
    )
    with pytest.raises(RuntimeError, match="AdminMiddleware is placed outside AuthMiddleware"):
        async with lifespan(app):
            pass


async def test_a_layer_that_is_needed_may_be_left_out_and_the_right_order_starts():
    alone = RateLimitMiddleware(ProviderApp(config=CONFIG), config=CONFIG)  # no Auth at all: fine
    async with lifespan(alone):
        pass
    app = Starlette(
        middleware=[
            Middleware(AuthMiddleware, config=CONFIG),
            Middleware(RateLimitMiddleware, config=CONFIG),
            Middleware(AdminMiddleware, config=CONFIG),
        ]
    )
    async with lifespan(app):
        pass


async def test_a_misordered_stack_starts_nothing_and_serve_would_exit(tmp_path):
    """The order check runs before any startup hook: nothing was opened, so nothing leaks."""
    started = []

    class Recorder(AuthMiddleware):
        async def startup(self) -> None:
            started.append("auth")

    app = RateLimitMiddleware(Recorder(ProviderApp(config=CONFIG), config=CONFIG), config=CONFIG)
    with pytest.raises(RuntimeError, match="lifespan startup failed: RateLimitMiddleware is placed outside"):
        async with lifespan(app):
            pass
    assert started == []


async def test_a_path_prefix_moves_every_llm_route_and_leaves_the_rest_alone(asgi_client):
    """`server.path_prefix`: the stack acts on `<prefix>/v1/...` and `<prefix>/admin/...`
    only; the same paths without the prefix (and anything else) reach the app inside."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from asgi_llm import AuthMiddleware, Config, ProviderApp, RouterMiddleware
    from asgi_llm.auth import hash_key
    from tests.conftest import mock_model

    config = Config.from_dict(
        {
            "models": [mock_model()],
            "server": {"path_prefix": "/llm"},
            "auth": {
                "api_keys": [{"id": "a", "key_sha256": hash_key("sk-prefix-key-1"), "roles": ["user"]}],
                "roles": {"user": {"models": ["*"], "endpoints": ["chat", "models"]}},
            },
        }
    )

    async def mine(request):
        return JSONResponse({"app": "mine", "path": request.url.path})

    inner = Starlette(routes=[Route("/{path:path}", mine, methods=["GET", "POST"])])
    app = AuthMiddleware(RouterMiddleware(inner, config=config), config=config)
    client = asgi_client(app=app)
    body = {"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]}
    assert (await client.post("/llm/v1/chat/completions", json=body)).status_code == 401
    # Without the prefix it is the user's own route, untouched by auth.
    reply = await client.post("/v1/chat/completions", json=body)
    assert reply.json() == {"app": "mine", "path": "/v1/chat/completions"}
    assert (await client.get("/llmx/v1/models")).json()["app"] == "mine"

    full = asgi_client(app=ProviderApp(config=config))
    assert (await full.post("/llm/v1/chat/completions", json=body)).status_code == 200
    assert (await full.get("/llm/v1/models")).json()["data"][0]["id"] == "mock-1"
