"""LLMLayer and the exchange: stack order checks, context in scope, lifespan."""

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware

from asgi_llm import AuthMiddleware, Config, ConfigError, ProviderApp, RateLimitMiddleware
from asgi_llm.admin import AdminMiddleware

CONFIG = Config.from_dict({"models": [{"name": "m", "deployments": [
    {"id": "m", "provider": "mock", "model": "m"}]}]})


def test_rate_limit_outside_auth_is_refused_at_startup():
    with pytest.raises(ConfigError, match="RateLimitMiddleware is placed outside AuthMiddleware"):
        RateLimitMiddleware(AuthMiddleware(ProviderApp(config=CONFIG), config=CONFIG), config=CONFIG)


def test_the_check_sees_through_starlettes_own_layers():
    app = Starlette(middleware=[Middleware(AdminMiddleware, config=CONFIG),
                                Middleware(AuthMiddleware, config=CONFIG)])
    with pytest.raises(ConfigError, match="AdminMiddleware is placed outside AuthMiddleware"):
        app.build_middleware_stack()


def test_the_right_order_builds():
    app = Starlette(middleware=[Middleware(AuthMiddleware, config=CONFIG),
                                Middleware(RateLimitMiddleware, config=CONFIG),
                                Middleware(AdminMiddleware, config=CONFIG)])
    app.build_middleware_stack()
