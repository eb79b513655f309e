"""Your own FastAPI app, with asgi-llm's AuthMiddleware in front of your LLM route.

Run: uvicorn/hypercorn examples.fastapi_auth:app  (keys come from the config below)
"""

from fastapi import FastAPI, Request

from asgi_llm import AuthMiddleware, Config
from asgi_llm.auth import hash_key

config = Config.from_dict(
    {
        "models": [{"name": "my-model", "deployments": [
            {"id": "local", "provider": "mock", "model": "my-model"}]}],
        "auth": {
            "api_keys": [{"id": "alice", "key_sha256": hash_key("sk-alice-example"),
                          "roles": ["user"], "tenant": "team-a"}],
            "roles": {"user": {"models": ["my-model"], "endpoints": ["chat", "models"]}},
        },
    }
)

app = FastAPI()
app.add_middleware(AuthMiddleware, config=config)


@app.post("/v1/chat/completions")
async def chat(request: Request) -> dict:
    llm = request.state.llm  # what the stack learned: principal, parsed request, model
    return {"caller": llm.principal.id, "tenant": llm.principal.tenant, "model": llm.entry.name,
            "said": llm.payload["messages"][-1]["content"]}


@app.get("/health")
async def health() -> dict:
    return {"ok": True}  # not an LLM path: AuthMiddleware lets it through untouched
