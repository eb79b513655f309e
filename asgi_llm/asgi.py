"""`asgi_llm.asgi:app`: the full stack for any ASGI server's own command line.

    ASGI_LLM_CONFIG=proxy.yaml hypercorn asgi_llm.asgi:app --bind 0.0.0.0:8000
    ASGI_LLM_CONFIG=proxy.yaml uvicorn asgi_llm.asgi:app --no-access-log --no-proxy-headers
    ASGI_LLM_CONFIG=proxy.yaml granian --interface asgi asgi_llm.asgi:app

The stack is built when this module is imported (never by importing `asgi_llm`), from the
file `ASGI_LLM_CONFIG` names, or the embedded default without it: what `asgi-llm serve`
builds, with RequestGuard outermost (431, ambiguous framing, the `asgi_llm.access` line).
The stack is its own lifespan owner, so the server's lifespan events start and stop it, and
a failed startup stops the server with the reason. What stays `asgi-llm serve`'s: the drain
that ends running streams with an error event, SIGHUP reloads, and its logging setup.
"""

from __future__ import annotations

from asgi_llm.server.guard import RequestGuard
from asgi_llm.server.workers import stack_from_env

app = RequestGuard(stack_from_env())

__all__ = ["app"]
