"""examples/fastapi_auth.py, run as a user would (in process)."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "fastapi_auth.py"


def load_example():
    spec = importlib.util.spec_from_file_location("fastapi_auth_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_fastapi_example(asgi_client):
    client = asgi_client(app=load_example().app)
    body = {"model": "MY-MODEL", "messages": [{"role": "user", "content": "hi"}]}
    ok = await client.post(
        "/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-alice-example"}
    )
    assert ok.json() == {"caller": "alice", "tenant": "team-a", "model": "my-model", "said": "hi"}
    assert (await client.post("/v1/chat/completions", json=body)).status_code == 401
    assert (await client.get("/health")).json() == {"ok": True}
