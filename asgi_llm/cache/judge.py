"""An optional second stage of the semantic tier: a configured model asked whether two
questions need the same answer.

It runs only in the gray zone: the best candidate that the guards allow is under the
threshold but at least `semantic.judge.low`. The question goes inward from the cache, through
the router (its strategy, retries, failover) and the provider, as a chat request of the same
caller to the model `semantic.judge.model`; it is neither looked up in the cache nor stored.
Only "yes" is a hit; anything else, an error, or no answer within `timeout_s` is a miss. Its
cost is added to the request's (`ctx.cost_usd`), hit or miss.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgi_llm.context import LLMContext
from asgi_llm.request import grant_for, validate
from asgi_llm.types import ASGIApp, Message

if TYPE_CHECKING:
    from asgi_llm.config.schema import SemanticJudge

log = logging.getLogger("asgi_llm.cache")
PROMPT = (
    "Two users sent these requests to an assistant. Would one answer serve both equally well? "
    "Different numbers, names, negations, directions or details mean no. Reply with one word: "
    "yes or no.\n\nRequest 1: {stored}\n\nRequest 2: {asked}"
)
MAX_BODY = 1 << 20


@dataclass(frozen=True, slots=True)
class Verdict:
    same: bool
    cost_usd: float  # what the judge's call cost (0.0 when unknown or failed before upstream)


class Judge:
    """Asks the inner app (the router and what is inside it) for a verdict."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.calls = 0
        self.said_yes = 0
        self.failures = 0  # errors and time-outs: each a miss
        self.cost_usd = 0.0

    async def __call__(self, parent: LLMContext, settings: SemanticJudge, stored: str, asked: str) -> Verdict:
        self.calls += 1
        payload = {
            "model": settings.model,
            "messages": [{"role": "user", "content": PROMPT.format(stored=stored, asked=asked)}],
            "max_tokens": settings.max_tokens,
            "temperature": 0,
        }
        ctx = LLMContext(
            request_id=f"{parent.request_id}-judge",
            config=parent.config,
            endpoint="chat",
            grant=grant_for("chat"),
            body=json.dumps(payload).encode(),
            payload=payload,
            model=settings.model,
            principal=parent.principal,
        )
        answer = bytearray()
        status: list[int] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": ctx.body, "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body" and len(answer) < MAX_BODY:
                answer.extend(message.get("body", b""))

        try:
            parsed = validate("chat", payload)
            ctx.needs, ctx.prompt_tokens_estimate = parsed.needs, parsed.prompt_tokens_estimate
            ctx.requested = ctx.entry = parent.config.catalog.resolve(settings.model)
            scope = {
                "type": "http",
                "method": "POST",
                "path": "/v1/chat/completions",
                "raw_path": b"/v1/chat/completions",
                "query_string": b"",
                "headers": [(b"content-type", b"application/json")],
                "state": {"llm": ctx},
            }
            async with asyncio.timeout(settings.timeout_s):
                await self.app(scope, receive, send)
            same = status == [200] and _says_yes(bytes(answer))
        except Exception as exc:  # noqa: BLE001 - a judge that fails is a miss
            self.failures += 1
            log.warning("semantic judge failed (%s): a miss", exc.__class__.__name__)
            same = False
        cost = ctx.cost_usd or 0.0
        self.cost_usd += cost
        self.said_yes += same
        return Verdict(same, cost)


def _says_yes(body: bytes) -> bool:
    try:
        content: Any = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    if not isinstance(content, str):
        return False
    words = content.strip().lower().split()
    return bool(words) and words[0].strip(".!,:;\"'") == "yes"


__all__ = ["PROMPT", "Judge", "Verdict"]
