"""The whole asgi-llm stack mounted under /llm in your own Starlette app, next to your routes.

    hypercorn examples.starlette_mount:app
    OpenAI(base_url="http://127.0.0.1:8000/llm/v1", api_key=...)
"""

from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

import asgi_llm

llm = asgi_llm.build_app(asgi_llm.Config.from_dict({
    "models": [{"name": "mock-1", "deployments": [{"id": "mock", "provider": "mock", "model": "mock-1"}]}],
}))


@asynccontextmanager
async def lifespan(app):
    # Starlette does not pass lifespan events to mounted apps: run the stack's here, so its
    # upstream pools are closed when your app stops.
    async with asgi_llm.lifespan(llm):
        yield


async def home(request):
    return JSONResponse({"app": "mine"})


app = Starlette(routes=[Route("/", home), Mount("/llm", app=llm)], lifespan=lifespan)
