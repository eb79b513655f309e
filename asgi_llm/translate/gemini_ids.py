"""Tool call ids for Gemini's function calls, which carry none of their own.

An id is made from the response id and the call's position, so a replayed answer keeps
its ids. Gemini 3 signs a function call (`thoughtSignature`) and refuses the next turn if
the signature does not come back with the call; chat completions have no place for it but
the id, which every client returns unchanged. So a signed call's id carries the signature,
in the URL-safe base64 alphabet (ids must stay `[A-Za-z0-9_-]`, as Anthropic's do).
"""

from __future__ import annotations

import hashlib
import os

_MARK = "__ts_"  # after a hex prefix, so the first occurrence is always the separator
_TO_URLSAFE = str.maketrans("+/", "-_")
_FROM_URLSAFE = str.maketrans("-_", "+/")


def call_id(response_id: str | None, position: int, signature: str | None = None) -> str:
    seed = f"{response_id}:{position}".encode() if response_id else os.urandom(16)
    ident = "call_" + hashlib.sha256(seed).hexdigest()[:24]
    if signature:
        ident += _MARK + signature.translate(_TO_URLSAFE).rstrip("=")
    return ident


def signature_of(ident: str) -> str | None:
    """The thought signature an id carries, in Gemini's own (standard base64) form."""
    _, mark, encoded = ident.partition(_MARK)
    if not mark or not encoded:
        return None
    return encoded.translate(_FROM_URLSAFE) + "=" * (-len(encoded) % 4)


__all__ = ["call_id", "signature_of"]
