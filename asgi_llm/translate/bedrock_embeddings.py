"""OpenAI embeddings requests <-> Bedrock InvokeModel bodies of Titan and Cohere embedding models.

Titan Text Embeddings (`amazon.titan-embed-text-v2:0`, v1) embeds one text per call: a list
of more than one input is refused by name rather than sent as several calls. Cohere Embed
(`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`) takes up to 96 texts at once.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from asgi_llm.errors import InvalidRequest
from asgi_llm.translate.fields import invalid

COHERE_MAX_TEXTS = 96
_CARRIED = frozenset({"model", "input", "encoding_format", "dimensions", "user"})


def embedding_family(model: str) -> str | None:
    """`titan` or `cohere` for a Bedrock model id (an inference profile's region prefix and
    an ARN's path included), else None."""
    name = model.rsplit("/", 1)[-1]
    if "titan-embed" in name:
        return "titan"
    if "cohere.embed" in name:
        return "cohere"
    return None


def embeddings_request(payload: dict[str, Any], family: str) -> dict[str, Any]:
    for name in payload:
        if name not in _CARRIED:
            raise _unsupported(name, family)
    texts = _texts(payload.get("input"))
    dimensions = payload.get("dimensions")
    if family == "titan":
        if len(texts) != 1:
            raise InvalidRequest(
                "Titan embedding models take one text per request: send 'input' as a string.",
                param="input",
                code="invalid_value",
            )
        body: dict[str, Any] = {"inputText": texts[0]}
        if dimensions is not None:
            body["dimensions"] = dimensions
        return body
    if dimensions is not None:
        raise _unsupported("dimensions", family)
    if len(texts) > COHERE_MAX_TEXTS:
        raise invalid("input", f"holds more than {COHERE_MAX_TEXTS} texts, Cohere's limit per request")
    return {"texts": texts, "input_type": "search_document"}


def _texts(given: Any) -> list[str]:
    if isinstance(given, str):
        return [given]
    if isinstance(given, list) and given and all(isinstance(text, str) for text in given):
        return given
    raise invalid(
        "input", "must be a string or an array of strings for Bedrock (not token ids)", "invalid_type"
    )


def _unsupported(name: str, family: str) -> InvalidRequest:
    return InvalidRequest(
        f"'{name}' has no equivalent for {family.title()} embedding models on Bedrock.",
        param=name,
        code="unsupported_parameter",
    )


def embeddings_answer(answer: Any, payload: dict[str, Any], *, model: str, family: str) -> dict[str, Any]:
    """The OpenAI embeddings list for an InvokeModel answer; ValueError when it is not one.
    `usage` is there only when the model said (Titan's inputTextTokenCount)."""
    if not isinstance(answer, dict):
        raise ValueError("not a JSON object")
    usage: dict[str, int] | None = None
    vectors: Any
    if family == "titan":
        vectors = [answer.get("embedding")]
        count = answer.get("inputTextTokenCount")
        if type(count) is int and count >= 0:
            usage = {"prompt_tokens": count, "total_tokens": count}
    else:
        vectors = answer.get("embeddings")
        if isinstance(vectors, dict):  # asked with embedding_types: {"float": [...]}
            vectors = vectors.get("float")
    if not isinstance(vectors, list) or not all(_is_vector(v) for v in vectors):
        raise ValueError("no embedding vectors")
    encode = payload.get("encoding_format") == "base64"
    data = [
        {"object": "embedding", "index": i, "embedding": _base64_floats(v) if encode else v}
        for i, v in enumerate(vectors)
    ]
    out: dict[str, Any] = {"object": "list", "data": data, "model": model}
    if usage is not None:
        out["usage"] = usage
    return out


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(type(x) in (float, int) for x in value)


def _base64_floats(vector: list[float]) -> str:
    """OpenAI's `encoding_format: base64`: little-endian float32s (the SDKs' default ask)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


__all__ = ["COHERE_MAX_TEXTS", "embedding_family", "embeddings_answer", "embeddings_request"]
