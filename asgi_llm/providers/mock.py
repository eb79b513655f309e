"""The built-in `mock` provider: an offline OpenAI-compatible upstream, in process.

It is an `UpstreamTransport` (its registry entry names it), so a mock deployment takes
exactly the path a real one takes (request building, streaming, usage, failover); only the
socket is missing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import orjson

from asgi_llm.config.schema import Deployment, MockOptions
from asgi_llm.providers.transport import UpstreamRequest

_EMBEDDING_DIM = 16


def _last_user_text(payload: dict[str, Any]) -> str:
    for message in reversed(payload.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    prompt = payload.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def _words(text: str) -> int:
    return max(1, len(text.split()))


def reply_pieces(payload: dict[str, Any], chunks: int) -> list[str]:
    """The deterministic reply, cut into `chunks` pieces."""
    said = " ".join(_last_user_text(payload).split()[:24])
    text = f"This is mock-1 answering: {said}" if said else "This is mock-1 answering."
    words = text.split(" ")
    size = max(1, -(-len(words) // chunks))
    pieces = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [p if i == 0 else " " + p for i, p in enumerate(pieces)]


def embedding(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()[: _EMBEDDING_DIM * 2]
    values = struct.unpack(f">{_EMBEDDING_DIM}h", digest)
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return [round(v / norm, 6) for v in values]


def _base64_floats(vector: list[float]) -> str:
    """OpenAI's `encoding_format: base64`: little-endian float32s, base64-encoded (what the
    SDKs ask for by default and decode without looking)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


class _Headers:
    __slots__ = ("_values",)

    def __init__(self, content_type: str) -> None:
        self._values = {"content-type": content_type}

    def get(self, key: str, /) -> str | None:
        return self._values.get(key.lower())


class _Response:
    """A whole answer, handed out in parts (one per SSE event), `delay_s` apart."""

    __slots__ = ("status_code", "headers", "_parts", "_delay")

    def __init__(self, content_type: str, parts: list[bytes], delay_s: float = 0.0) -> None:
        self.status_code = 200
        self.headers = _Headers(content_type)
        self._parts = parts
        self._delay = delay_s

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for part in self._parts:
            if self._delay:
                await asyncio.sleep(self._delay)
            yield part

    async def aclose(self) -> None:
        pass


class MockTransport:
    def __init__(self, deployment: Deployment) -> None:
        self.model = deployment.model
        self.options = deployment.mock or MockOptions()

    async def aclose(self) -> None:
        pass

    async def send(self, request: UpstreamRequest) -> _Response:
        options = self.options
        if options.latency_ms:
            await asyncio.sleep(options.latency_ms / 1000)
        payload = orjson.loads(request.body or b"{}")
        path = urlsplit(request.url).path
        if path.endswith("/embeddings"):
            return self._json(self._embeddings(payload))
        kind = "completions" if path.endswith("/v1/completions") or path == "/completions" else "chat"
        pieces = reply_pieces(payload, options.chunks)
        prompt_tokens = _words(_last_user_text(payload))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(pieces),
            "total_tokens": prompt_tokens + len(pieces),
        }
        created = int(time.time())
        ident = "mock-" + hashlib.sha256(request.body).hexdigest()[:24]
        if payload.get("stream"):
            events = [
                self._chunk(kind, ident, created, piece, i == 0, None) for i, piece in enumerate(pieces)
            ]
            events.append(self._chunk(kind, ident, created, "", False, "stop"))
            if (payload.get("stream_options") or {}).get("include_usage"):
                events.append(
                    {
                        "id": ident,
                        "object": self._object(kind, True),
                        "created": created,
                        "model": self.model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            parts = [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
            return _Response("text/event-stream", parts, options.chunk_delay_ms / 1000)
        text = "".join(pieces)
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": None}
        if kind == "chat":
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return self._json(
            {
                "id": ident,
                "object": self._object(kind, False),
                "created": created,
                "model": self.model,
                "choices": [choice],
                "usage": usage,
            }
        )

    def _embeddings(self, payload: dict[str, Any]) -> dict[str, Any]:
        given = payload.get("input")
        inputs = [given] if isinstance(given, str) else list(given or [])
        encode = _base64_floats if payload.get("encoding_format") == "base64" else None
        data = []
        for i, text in enumerate(inputs):
            vector = embedding(str(text))
            data.append(
                {"object": "embedding", "index": i, "embedding": encode(vector) if encode else vector}
            )
        tokens = sum(_words(str(text)) for text in inputs)
        return {
            "object": "list",
            "data": data,
            "model": self.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def _chunk(
        self, kind: str, ident: str, created: int, piece: str, first: bool, finish: str | None
    ) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish, "logprobs": None}
        if kind == "chat":
            choice["delta"] = (
                {"role": "assistant", "content": piece} if first else ({"content": piece} if piece else {})
            )
        else:
            choice["text"] = piece
        return {
            "id": ident,
            "object": self._object(kind, True),
            "created": created,
            "model": self.model,
            "choices": [choice],
        }

    @staticmethod
    def _object(kind: str, stream: bool) -> str:
        if kind == "chat":
            return "chat.completion.chunk" if stream else "chat.completion"
        return "text_completion"

    @staticmethod
    def _json(payload: dict[str, Any]) -> _Response:
        return _Response("application/json", [orjson.dumps(payload)])
