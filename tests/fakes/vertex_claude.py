"""A fake of Anthropic's models on Vertex AI: FakeVertex (its token endpoint, its Gemini
routes) that also answers `POST /v1/projects/{project}/locations/{location}/publishers/
anthropic/models/{model}:rawPredict` and `:streamRawPredict`.

    with FakeVertexClaude() as vertex:
        vertex.claude.script(ClaudeReply(tool_uses=[("get_weather", {"city": "Paris"})]))
        ...  # a `vertex` deployment of model vertex.claude_model, base_url=vertex.root_url

What Vertex AI checks, this checks: a bearer token it issued and that has not expired (401
in Google's shape otherwise), the project, location and model in the path (404), and the
body: `anthropic_version: vertex-2023-10-16`, no `model` (the URL names it), `stream: true`
exactly on streamRawPredict (400 in Anthropic's shape otherwise); `count-tokens:rawPredict`
takes the version and the model in its body. The rest of the body is then checked and
answered by a FakeAnthropic (`claude`: its field checks, thinking signatures, simulated
prompt cache, usage and event streams), as Vertex AI hands it to Anthropic's model.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.anthropic import error_body as anthropic_error_body
from tests.fakes.gemini import FakeVertex
from tests.fakes.upstream import RecordedRequest, Send

VERSION = "vertex-2023-10-16"
_CLAUDE_PATH = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/anthropic/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$"
)


class FakeVertexClaude(FakeVertex):
    def __init__(self, name: str = "vertex-claude", **options: Any) -> None:
        super().__init__(name, **options)
        self.claude = FakeAnthropic(f"{name}-anthropic")  # answers; never started itself
        self.claude_model = "claude-fake-4-5@20250929"

    def reset(self) -> None:
        super().reset()
        self.claude.reset()

    async def _respond(self, rec: RecordedRequest, send: Send, abort: asyncio.Event) -> None:
        match = _CLAUDE_PATH.match(rec.path)
        if match is None:
            return await super()._respond(rec, send, abort)
        json = {"content-type": "application/json"}
        if (match["project"], match["location"]) != (self.project, self.location) or rec.method != "POST":
            return await self._refuse(rec, send, 404, f"Not found: {rec.method} {rec.path}")
        denied = self._authorize(rec)
        if denied is not None:
            return await self._refuse(rec, send, *denied)
        payload = rec.json
        if match["model"] == "count-tokens" and match["method"] == "rawPredict":
            return await self._count(rec, send, abort, payload)
        if match["model"] != self.claude_model:
            message = f"Publisher Model `{match['model']}` not found."
            return await self._refuse(rec, send, 404, message)
        problem = self._check_vertex_body(payload, match["method"])
        if problem is not None:
            self.refused.append((rec, problem))
            return await self._reply(rec, send, 400, anthropic_error_body(400, problem), json)
        assert isinstance(payload, dict)
        # What Anthropic's model gets: the body without Vertex's field, the model the URL names.
        body = {k: v for k, v in payload.items() if k != "anthropic_version"}
        inner = dataclasses.replace(rec, path="/v1/messages", json={**body, "model": match["model"]})
        try:
            await self.claude._respond(inner, send, abort)
        finally:
            rec.finished_at = inner.finished_at

    async def _count(self, rec: RecordedRequest, send: Send, abort: asyncio.Event, payload: Any) -> None:
        """count-tokens:rawPredict: the one call whose body names the model."""
        json = {"content-type": "application/json"}
        problem = None
        if not isinstance(payload, dict) or payload.get("anthropic_version") != VERSION:
            problem = f"anthropic_version: Input should be '{VERSION}'"
        elif payload.get("model") != self.claude_model:
            problem = f"model: count-tokens needs the model, {self.claude_model!r}"
        if problem is not None:
            self.refused.append((rec, problem))
            return await self._reply(rec, send, 400, anthropic_error_body(400, problem), json)
        body = {k: v for k, v in payload.items() if k != "anthropic_version"}
        inner = dataclasses.replace(rec, path="/v1/messages/count_tokens", json=body)
        await self.claude._respond(inner, send, abort)
        rec.finished_at = inner.finished_at

    @staticmethod
    def _check_vertex_body(payload: Any, method: str) -> str | None:
        if not isinstance(payload, dict):
            return "The request body is not a JSON object."
        if payload.get("anthropic_version") != VERSION:
            return f"anthropic_version: Input should be '{VERSION}'"
        if "model" in payload:
            return "model: Extra inputs are not permitted"
        if method not in ("rawPredict", "streamRawPredict"):
            return f"unknown method {method}"
        if (method == "streamRawPredict") != (payload.get("stream") is True):
            return f"{method} takes stream: {str(method == 'streamRawPredict').lower()}"
        return None


__all__ = ["FakeVertexClaude"]
