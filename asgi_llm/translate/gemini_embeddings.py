"""OpenAI embeddings requests and answers <-> Gemini's: `embedContent` for one text and
`batchEmbedContents` for several (the Gemini API), `predict` of the text-embedding models
(Vertex AI). Token arrays are not text: refused.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from asgi_llm.translate.gemini_request import unsupported


def embeddings_texts(payload: dict[str, Any]) -> list[str]:
    """The texts of an embeddings request (token arrays are not text: refused)."""
    given = payload.get("input")
    texts = [given] if isinstance(given, str) else given
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise unsupported("input", " (token arrays; send text)")
    for name in payload:
        if name not in ("model", "input", "encoding_format", "dimensions", "user"):
            raise unsupported(name)
    return texts


def embed_request(payload: dict[str, Any], *, model: str) -> tuple[str, dict[str, Any]]:
    """(method, body) for the Gemini API: `embedContent` for one text, else
    `batchEmbedContents` with one request per text, each naming `models/{model}`."""
    texts = embeddings_texts(payload)
    dimensions = payload.get("dimensions")

    def one(text: str) -> dict[str, Any]:
        request: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            request["outputDimensionality"] = dimensions
        return request

    if isinstance(payload.get("input"), str):
        return "embedContent", one(texts[0])
    return "batchEmbedContents", {"requests": [{"model": f"models/{model}", **one(t)} for t in texts]}


def predict_request(payload: dict[str, Any]) -> dict[str, Any]:
    """The Vertex AI `predict` body of its text-embedding models."""
    body: dict[str, Any] = {"instances": [{"content": text} for text in embeddings_texts(payload)]}
    if payload.get("dimensions") is not None:
        body["parameters"] = {"outputDimensionality": payload["dimensions"]}
    return body


def _vector(values: Any, encoding: str | None) -> list[float] | str:
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
        raise ValueError("an embedding without values")
    if encoding == "base64":  # what OpenAI sends: little-endian float32, base64
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return values


def embeddings_list(
    vectors: list[Any], *, model: str, encoding: str | None, prompt_tokens: int = 0
) -> dict[str, Any]:
    data = [
        {"object": "embedding", "index": i, "embedding": _vector(values, encoding)}
        for i, values in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def gemini_embeddings(response: dict[str, Any]) -> list[Any]:
    """The vectors of an `embedContent` or `batchEmbedContents` answer, in order."""
    if isinstance(response.get("embedding"), dict):
        return [response["embedding"].get("values")]
    embeddings = response.get("embeddings")
    if not isinstance(embeddings, list):
        raise ValueError("no embeddings")
    return [e.get("values") if isinstance(e, dict) else None for e in embeddings]


def predict_embeddings(response: dict[str, Any]) -> tuple[list[Any], int | None]:
    """The vectors of a Vertex `predict` answer, and the tokens it counted."""
    predictions = response.get("predictions")
    if not isinstance(predictions, list):
        raise ValueError("no predictions")
    vectors: list[Any] = []
    tokens: int | None = 0
    for prediction in predictions:
        embeddings = prediction.get("embeddings") if isinstance(prediction, dict) else None
        if not isinstance(embeddings, dict):
            raise ValueError("a prediction without embeddings")
        vectors.append(embeddings.get("values"))
        count = (embeddings.get("statistics") or {}).get("token_count")
        if tokens is not None and isinstance(count, (int, float)) and not isinstance(count, bool):
            tokens += int(count)
        else:
            tokens = None
    return vectors, tokens


__all__ = [
    "embed_request",
    "embeddings_list",
    "embeddings_texts",
    "gemini_embeddings",
    "predict_embeddings",
    "predict_request",
]
